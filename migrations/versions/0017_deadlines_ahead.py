"""The weekly summary: every Monday, each member's open deadlines of the next 14 days in one
message (the firm's partners: the firm's), by email or in the digest (docs/DELIVERY.md).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0017_up.sql")


def downgrade() -> None:
    run_sql_file("0017_down.sql")
