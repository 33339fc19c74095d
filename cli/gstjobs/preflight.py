"""What an installation needs of the server and the login, checked before anything changes
(sql/preflight.sql): by `alembic upgrade` and by `gstjobs doctor --preflight`."""

from typing import Any

import psycopg
from psycopg.rows import dict_row

from gstjobs.resources import named_queries


def checks(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """One {name, ok, detail, fix, blocking} per check."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(named_queries("preflight.sql")["preflight"].encode()).fetchall()


def refusal(conn: psycopg.Connection[Any]) -> str | None:
    """What stops an installation, one line and its fix each; None when nothing does."""
    failed = [c for c in checks(conn) if c["blocking"] and not c["ok"]]
    if not failed:
        return None
    return "\n".join(f"gstjobs: {c['name']}: no ({c['detail']})\n  fix: {c['fix']}" for c in failed)
