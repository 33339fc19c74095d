"""Digests: per kind, a member may have one email at a time of their choosing that lists what
came since the last one, instead of a message each (docs/DELIVERY.md, "What a member
receives, and when").

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0016_up.sql")


def downgrade() -> None:
    run_sql_file("0016_down.sql")
