"""The runner's sessions as gstjobs's runs need them, whatever the database's defaults: no
statement_timeout (runs stop at their jobs' own timeouts, timeout.<job>), READ COMMITTED
(docs/OPERATIONS.md, "The server's settings and gstjobs's runs").

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0020_up.sql")


def downgrade() -> None:
    run_sql_file("0020_down.sql")
