"""What a member receives, and when: per kind of notification, the channels a firm sets for its
members and a member's own choice overrides (some cannot be switched off), email instead of
WhatsApp that cannot go, and quiet hours per firm and member through which messages that can
wait are held (docs/DELIVERY.md, "What a member receives, and when").

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0014_up.sql")


def downgrade() -> None:
    run_sql_file("0014_down.sql")
