"""A safe first start: the installation's identity (a restored copy sends nothing until an
administrator confirms it is production), and smtp.host empty by default.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0006_up.sql")


def downgrade() -> None:
    run_sql_file("0006_down.sql")
