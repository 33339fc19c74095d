"""A calendar closes on Sundays only unless it names more closed weekdays.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_up.sql")


def downgrade() -> None:
    run_sql_file("0008_down.sql")
