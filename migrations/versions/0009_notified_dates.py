"""Notified dates with their citation, the department's notice and rectification limits, and
the financial years each show-cause section applies to.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_up.sql")


def downgrade() -> None:
    run_sql_file("0009_down.sql")
