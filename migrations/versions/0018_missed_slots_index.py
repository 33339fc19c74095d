"""health-check finds missed slots through an index of their own, not a read of every slot kept
(docs/BENCHMARKS.md, "Growth: seed, L, XL"). Downgrading also puts back 0017's outbox view
(head's shows sending_run, from a column 0010's downgrade drops).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from migrations.helpers import run_sql_file

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0018_up.sql")


def downgrade() -> None:
    run_sql_file("0018_down.sql")
