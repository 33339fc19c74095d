"""Limits on what a firm may store that agree with what the jobs do with it: plain text where
it reaches a subject or header, email addresses the email package accepts, bounded times and
escalation delays (added NOT VALID, validated where the stored rows allow).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from migrations.helpers import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_up.sql")


def downgrade() -> None:
    run_sql_file("0005_down.sql")
