"""GST statutory deadlines computed from case events, with holiday calendars.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from migrations.helpers import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0002_up.sql")


def downgrade() -> None:
    run_sql_file("0002_down.sql")
