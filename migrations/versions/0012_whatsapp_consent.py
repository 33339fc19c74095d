"""WhatsApp consent: a member's opt-in and opt-out, recorded by the firm application; WhatsApp
messages are written only to members whose latest word is yes, and an opt-out ends what still
waits for them as `suppressed` (docs/DELIVERY.md, "WhatsApp consent").

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0012_up.sql")


def downgrade() -> None:
    run_sql_file("0012_down.sql")
