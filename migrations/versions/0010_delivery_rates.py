"""Delivery limits as rates: a token bucket per channel shared by every dispatcher, and claims
that hold while messages are in flight across a run's commits.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_up.sql")


def downgrade() -> None:
    run_sql_file("0010_down.sql")
