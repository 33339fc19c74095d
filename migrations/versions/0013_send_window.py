"""Each channel's rate kept as a sliding window (the grants of the last second, in 25-ms
slots) instead of a shallow token bucket: a dispatch loop that comes back late takes what the
window still allows, instead of losing the tokens a full bucket could not hold
(docs/DELIVERY.md, "Rates, not caps").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0013_up.sql")


def downgrade() -> None:
    run_sql_file("0013_down.sql")
