"""Helpers for revision scripts: each revision's DDL lives in migrations/sql/, frozen."""

import sys
from pathlib import Path

from alembic import context, op

SQL_DIR = Path(__file__).parent / "sql"


def run_sql_file(name: str) -> None:
    """Execute migrations/sql/<name> through the driver, as one simple query. What the SQL says
    to the DBA (RAISE NOTICE: a role kept, rows that break a new limit) is printed, not lost."""
    text = (SQL_DIR / name).read_text(encoding="utf-8")
    if context.is_offline_mode():
        # alembic upgrade head --sql: written out as it would run, for the DBA to read
        context.static_output(text.rstrip() + "\n")
        return
    connection = op.get_bind().connection.driver_connection

    def tell(notice: object) -> None:
        print(f"{name}: NOTICE: {getattr(notice, 'message_primary', notice)}", file=sys.stderr)

    connection.add_notice_handler(tell)
    try:
        connection.execute(text.encode())
    finally:
        connection.remove_notice_handler(tell)
