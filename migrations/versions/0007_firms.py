"""Bringing a firm in and out: the role gstjobs_provisioner and a firm's disabled state.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_up.sql")


def downgrade() -> None:
    run_sql_file("0007_down.sql")
