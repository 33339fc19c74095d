"""Each channel's rate as one schedule of send times shared by every dispatcher, instead of a
window of grants each run's sender then spaced on its own (docs/DELIVERY.md, "Rates, not
caps"): at a tick's handover the two runs' senders sent closer together than the rate allows.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0019_up.sql")


def downgrade() -> None:
    run_sql_file("0019_down.sql")
