"""A small hand-made practice for the job scenarios, and helpers to run jobs and read results."""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

IST = ZoneInfo("Asia/Kolkata")
LONDON = ZoneInfo("Europe/London")

FIRM_DATA = """
INSERT INTO litigation.tenants (id, name, timezone, whatsapp_enabled) VALUES
    (1, 'Mehta & Associates, Mumbai', 'Asia/Kolkata', true),
    (2, 'Mehta & Associates (London desk)', 'Europe/London', false);
INSERT INTO litigation.members (tenant_id, id, name, email, phone, role, manager_id) VALUES
    (1, 1, 'Priya Mehta', 'priya@mehta.example.in', '+919800000001', 'partner', NULL),
    (1, 2, 'Rohan Iyer', 'rohan@mehta.example.in', NULL, 'manager', 1),
    (1, 3, 'Aarav Shah', 'aarav@mehta.example.in', '+919800000003', 'associate', 2),
    (1, 4, 'Kavya Nair', 'kavya@mehta.example.in', NULL, 'admin', 1),
    (1, 5, 'Neha Joshi', NULL, NULL, 'associate', 2),
    (2, 6, 'Vikram Rao', 'vikram@mehta.example.co.uk', NULL, 'partner', NULL);
INSERT INTO litigation.clients (tenant_id, id, name, gstin) VALUES
    (1, 1, 'Balaji Steel Traders Pvt Ltd', '27AAPFU0939F1ZV'),
    (2, 2, 'Kaveri Exports Pvt Ltd', '29AAGCB7383J1Z4');
INSERT INTO litigation.cases (tenant_id, id, client_id, reference, section, stage, demand_amount, owner_id) VALUES
    (1, 1, 1, 'SCN/73/2025-26/00042', '73', 'show_cause', 1250000, 3),
    (1, 2, 1, 'APL/107/2025-26/00007', '107', 'first_appeal', 480000, 2),
    (2, 3, 2, 'APL/112/2025-26/00003', '112', 'tribunal', 9900000, 6);
"""
# the members with a phone opted in to WhatsApp (revision 0012; FIRM_DATA alone before it)
FIRM = (
    FIRM_DATA
    + """
INSERT INTO litigation.whatsapp_consents (tenant_id, member_id, opted_in_at, opted_in_how) VALUES
    (1, 1, '2026-01-05 10:00+05:30', 'onboarding form'),
    (1, 3, '2026-01-05 10:00+05:30', 'onboarding form');
"""
)


@pytest.fixture
def firm(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Firm 1 in Mumbai (WhatsApp on), firm 2 a London desk; cases 1-2 in Mumbai, 3 in London."""
    conn.execute(FIRM.encode())
    return conn


def as_firm(conn: psycopg.Connection[Any], tenant: int, statement: str, *args: Any) -> Any:
    """A statement as the firm application of one firm, in a transaction of its own."""
    with conn.transaction():
        conn.execute("SET LOCAL ROLE gstjobs_app")
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        return conn.execute(statement, args)


def at(text: str, zone: ZoneInfo = IST) -> datetime:
    """A local wall-clock time in a zone: at('2026-12-03 08:05')."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def run(
    conn: psycopg.Connection[Any], job: str, as_of: datetime, tenant: int | None = None
) -> dict[str, Any]:
    """Run a job as of a moment, by hand; its counts (and status) from the ledger."""
    called = conn.execute(
        "CALL gstjobs.run_job(%s, as_of => %s, tenant_id => %s)", (job, as_of, tenant)
    ).fetchone()
    assert called is not None
    row = conn.execute(
        "SELECT status, counts, error FROM gstjobs.runs WHERE id = %s", (called[0],)
    ).fetchone()
    assert row is not None
    assert row[0] == "succeeded", row
    counts: dict[str, Any] = row[1]
    return counts


def notifications(conn: psycopg.Connection[Any], kind: str | None = None) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "SELECT * FROM gstjobs.notifications WHERE %s::text IS NULL OR kind = %s ORDER BY id",
        (kind, kind),
    ).fetchall()


def recipients(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r["channel"], r["recipient"]) for r in rows}


def params(row: dict[str, Any]) -> dict[str, Any]:
    template = row["template"]
    return dict(json.loads(template) if isinstance(template, str) else template)["params"]


@contextlib.contextmanager
def live_statement(dsn: str) -> Iterator[tuple[int, datetime, datetime]]:
    """A session busy in one long statement: (pid, backend_start, query_start), what a run in
    progress records. A running row with these is alive (gstjobs.mark_crashed_runs) until the
    statement ends, which it does, cancelled, on leaving."""
    busy = psycopg.connect(dsn, autocommit=True)
    sleeping = threading.Thread(target=_sleep, args=(busy,))
    sleeping.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            with psycopg.connect(dsn, autocommit=True) as look:
                row = look.execute(
                    "SELECT pid, backend_start, query_start FROM pg_stat_activity"
                    " WHERE pid = %s AND state = 'active' AND query LIKE 'SELECT pg_sleep%%'",
                    (busy.info.backend_pid,),
                ).fetchone()
            if row is not None:
                break
            assert time.monotonic() < deadline, "the busy session never started its statement"
            time.sleep(0.05)
        yield row
    finally:
        with psycopg.connect(dsn, autocommit=True) as stop:
            stop.execute("SELECT pg_cancel_backend(%s)", (busy.info.backend_pid,))
        sleeping.join(30)
        busy.close()


def _sleep(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.errors.QueryCanceled):
        conn.execute("SELECT pg_sleep(300)")


@pytest.fixture
def busy_session(db: str) -> Iterator[tuple[int, datetime, datetime]]:
    """live_statement for the length of a test."""
    with live_statement(db) as session:
        yield session
