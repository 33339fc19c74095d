"""Per-job timeouts and cancel: a run past its job's timeout, or cancelled by an operator, is
stopped (its statement cancelled) and recorded failed ("timed out after ...") or cancelled.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0011_up.sql")


def downgrade() -> None:
    run_sql_file("0011_down.sql")
