"""Email that says how to choose what one receives: a firm's preferences page, in a plain
footer and as RFC 8058 one-click List-Unsubscribe, with each member's own token
(docs/DELIVERY.md, "What a member receives, and when").

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0015_up.sql")


def downgrade() -> None:
    run_sql_file("0015_down.sql")
