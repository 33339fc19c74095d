"""Foundation: extensions, roles, the litigation schema and the toolkit's tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from migrations.helpers import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0001_up.sql")


def downgrade() -> None:
    run_sql_file("0001_down.sql")
