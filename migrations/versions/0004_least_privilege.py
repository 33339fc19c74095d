"""Least privilege: gstjobs_admin for endpoints, secrets and retention; secrets bound to their
endpoint; the run guard in the ledger (runs.query_start) instead of advisory locks; an
append-only audit log; settings checked where they are stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0004_up.sql")


def downgrade() -> None:
    run_sql_file("0004_down.sql")
