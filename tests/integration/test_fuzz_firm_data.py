"""Fuzzing what a firm may store: as the firm application of firm 2, extreme but accepted values
(every Unicode category, control characters, the longest texts, times at the edges, the widest
zones) in the columns it may write; then every job runs, and dispatch delivers to loopback
servers. Firm 1's notifications are all made and each delivered exactly once, and no run fails
as a whole, whatever firm 2 stored. Values the database refuses are simply not stored (the
application got its error); the cases that once stopped a job for every firm are pinned as
explicit examples. Deterministic (derandomize) and bounded, so that make test stays quick."""

import hashlib
import string
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tests.conftest import database
from tests.delivery.conftest import TOKEN, SmtpSink, WhatsAppApi
from tests.integration.conftest import FIRM, LONDON, at
from tests.integration.test_firm_isolation import WORK

# every character PostgreSQL text can hold (not NUL, not a lone surrogate), and the ones most
# likely to break something: control characters, separators, quotes, the email headers' own
CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
# what the columns accept: every category but control characters and line separators (format
# characters such as a right-to-left override or a zero-width no-break space included)
PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))
AWKWARD = st.sampled_from(list("\r\n\t\x1b\x1c\x85\u00a0\u2028\u2029\u202e\ufeff\"'%{}:;<>@\\"))


def texts(limit: int) -> st.SearchStrategy[str]:
    """Text up to limit characters: printable in any script, short or at the limit (stored),
    and any characters or awkward ones only (mostly refused)."""
    return st.one_of(
        st.text(PRINTABLE, min_size=1, max_size=20),
        st.text(PRINTABLE, min_size=max(1, limit - 3), max_size=limit),
        st.text(st.sampled_from(string.printable), min_size=limit, max_size=limit),
        st.text(CHARACTERS, min_size=1, max_size=limit),
        st.text(AWKWARD, min_size=1, max_size=10),
    )


def instants() -> st.SearchStrategy[datetime]:
    return st.one_of(
        st.datetimes(datetime(1999, 12, 31), datetime(2200, 1, 2), timezones=st.just(UTC)),
        st.sampled_from(
            [datetime(2000, 1, 1, tzinfo=UTC), datetime(2199, 12, 31, 23, 59, tzinfo=UTC)]
        ),
    )


ADDRESSES = st.one_of(
    st.emails(),
    st.emails(),
    texts(254),
    st.sampled_from(["a@[b", "x@[y.z", "a\x1cb@c.in", "a\u00a0b@c.in", "Name <a@b.in>"]),
)
ZONES = st.sampled_from(
    ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu", "America/St_Johns",
     "Etc/GMT+12", "Etc/GMT-14", "UTC", "Asia/Kolkata", "Europe/London"]
)  # fmt: skip

# (table, column) -> the values firm 2's application may try
COLUMNS: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("tenants", "name"): texts(200),
    ("tenants", "timezone"): ZONES,
    ("tenants", "whatsapp_enabled"): st.booleans(),
    ("tenants", "escalation_delay"): st.one_of(
        st.timedeltas(timedelta(microseconds=1), timedelta(days=31)),
        st.sampled_from([timedelta(days=365 * 200_000), timedelta(microseconds=1)]),
    ),
    ("tenants", "email_from"): ADDRESSES,
    ("tenants", "reply_to"): ADDRESSES,
    ("members", "name"): texts(200),
    ("members", "email"): ADDRESSES,
    ("members", "phone"): st.one_of(
        st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True), texts(20)
    ),
    ("members", "role"): st.sampled_from(["partner", "manager", "associate", "admin"]),
    ("members", "active"): st.booleans(),
    ("clients", "name"): texts(200),
    ("cases", "reference"): texts(100),
    ("cases", "section"): st.one_of(
        st.from_regex(r"[0-9]{1,3}[A-Z]?(\([0-9a-z]+\))*", fullmatch=True), texts(10)
    ),
    ("cases", "stage"): st.sampled_from(["show_cause", "order", "tribunal", "closed"]),
    ("cases", "demand_amount"): st.decimals(0, 10**14 - 1, places=2),
    ("hearings", "starts_at"): instants(),
    ("hearings", "forum"): texts(200),
    ("hearings", "venue"): texts(500),
    ("hearings", "status"): st.sampled_from(["scheduled", "adjourned", "held", "cancelled"]),
    ("tasks", "title"): texts(300),
    ("tasks", "priority"): st.sampled_from(["low", "normal", "high", "urgent"]),
    ("tasks", "due_at"): instants(),
    ("tasks", "sla_due_at"): instants(),
    ("deadlines", "kind"): texts(100),
    ("deadlines", "due_on"): st.dates(date(1999, 12, 31), date(2200, 1, 2)),
}


@st.composite
def firm_values(draw: st.DrawFn) -> dict[tuple[str, str], Any]:
    """Some of firm 2's columns, each with a value to try."""
    chosen = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=10, unique=True))
    return {column: draw(COLUMNS[column]) for column in chosen}


AS_OF = {
    "sla-check": at("2026-11-20 10:00"),
    "hearing-reminders": at("2026-11-20 08:15", LONDON),
    "deadline-alerts": at("2026-11-20 09:15", LONDON),
    "analytics-snapshot": at("2026-11-20 23:50"),
}


@pytest.fixture(scope="module")
def sinks() -> Any:
    smtp = SmtpSink()
    smtp.start()
    from http.server import ThreadingHTTPServer
    from threading import Thread

    api = type("Api", (WhatsAppApi,), {"script": [], "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), api)
    Thread(target=server.serve_forever, daemon=True).start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}/v19.0/1"
    yield smtp, api
    smtp.stop()
    server.shutdown()
    server.server_close()


def store(conn: psycopg.Connection[Any], values: dict[tuple[str, str], Any]) -> list[str]:
    """Each value written as firm 2's application would write it; those refused are not."""
    stored = []
    for (table, column), value in values.items():
        try:
            with conn.transaction():
                conn.execute("SET LOCAL ROLE gstjobs_app")
                conn.execute("SELECT set_config('app.tenant_id', '2', true)")
                key = "id" if table == "tenants" else "tenant_id"
                conn.execute(
                    f"UPDATE litigation.{table} SET {column} = %s WHERE {key} = 2", (value,)
                )
            stored.append(f"{table}.{column}")
        except (psycopg.Error, ValueError, OverflowError):
            pass  # refused: what the database will not keep, the jobs never see
    return stored


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(values=firm_values())
# the cases that once stopped a job for every firm (issue 19)
@example(values={("tasks", "title"): "Reply " * 49 + "now!!!"})
@example(values={("cases", "reference"): "R" * 100, ("hearings", "forum"): "Forum " * 33 + "ab"})
@example(values={("tenants", "escalation_delay"): timedelta(days=365 * 200_000)})
@example(values={("tasks", "title"): "Reply\r\nBcc: spy@evil.example"})
@example(values={("tenants", "email_from"): "a@[b", ("members", "email"): "x@[y.z"})
@example(values={("members", "email"): "a\x85b@firm.in", ("tenants", "reply_to"): "a\u00a0b@c.in"})
def test_whatever_firm_2_stores_firm_1_is_served_exactly_once(
    server: str, sinks: Any, values: dict[tuple[str, str], Any]
) -> None:
    smtp, api = sinks
    smtp.received.clear()
    api.requests.clear()
    with database(server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(FIRM.encode())
        conn.execute(WORK)
        conn.execute(
            "SELECT gstjobs.set_settings(%s)",
            (
                Jsonb(
                    {
                        "smtp.host": "127.0.0.1",
                        "smtp.port": str(smtp.port),
                        "whatsapp.url": api.url,
                        "whatsapp.token": TOKEN,
                    }
                ),
            ),
        )
        store(conn, values)
        statuses = {}
        for job, as_of in AS_OF.items():
            called = conn.execute("CALL gstjobs.run_job(%s, as_of => %s)", (job, as_of)).fetchone()
            statuses[job] = conn.execute(
                "SELECT status, error FROM gstjobs.runs WHERE id = %s", called
            ).fetchone()
        called = conn.execute("CALL gstjobs.run_job('dispatch-notifications')").fetchone()
        statuses["dispatch-notifications"] = conn.execute(
            "SELECT status, error FROM gstjobs.runs WHERE id = %s", called
        ).fetchone()
        assert {job: s[0] for job, s in statuses.items()} == dict.fromkeys(statuses, "succeeded"), (
            statuses
        )
        mine = conn.execute(
            "SELECT kind, channel, dedupe_key, status, provider_reply FROM gstjobs.notifications"
            " WHERE tenant_id = 1 ORDER BY dedupe_key"
        ).fetchall()
        snapshot = conn.execute(
            "SELECT count(*) FROM gstjobs.analytics_snapshots WHERE tenant_id = 1"
        ).fetchone()
    # firm 1: its breach, its hearing tomorrow and its deadline tomorrow, by email and WhatsApp
    assert Counter((kind, channel) for kind, channel, *_ in mine) == {
        (kind, channel): 1
        for kind in ("sla-breach", "hearing-reminder", "deadline-alert")
        for channel in ("email", "whatsapp")
    }
    assert {status for *_, status, _ in mine} == {"sent"} and snapshot == (1,)
    # each delivered once: its Message-ID (from its dedupe key) once at the SMTP server, its
    # WhatsApp message id its own
    received = Counter(str(m["Message-ID"]).split("@")[0].strip("<") for m in smtp.received)
    for _, channel, key, *_ in mine:
        if channel == "email":
            assert received[hashlib.sha256(key.encode()).hexdigest()[:40]] == 1, key
    replies = [reply for _, channel, _, _, reply in mine if channel == "whatsapp"]
    assert len(set(replies)) == len(replies) == 3
