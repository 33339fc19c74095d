"""Helpers for revision scripts: each revision's DDL lives in migrations/sql/, frozen."""

from pathlib import Path

from alembic import op

SQL_DIR = Path(__file__).parent / "sql"


def run_sql_file(name: str) -> None:
    """Execute migrations/sql/<name> through the driver, as one simple query."""
    text = (SQL_DIR / name).read_text(encoding="utf-8")
    op.get_bind().connection.driver_connection.execute(text.encode())
