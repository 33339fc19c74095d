"""Indexes for the hot paths (the outbox claim, run_id of the tables that point at a run, the
firm's partners, dead letters) and jsonb_plpython3u, through which job bodies return counts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from migrations.helpers import run_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0003_up.sql")


def downgrade() -> None:
    run_sql_file("0003_down.sql")
