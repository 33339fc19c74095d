"""The shared generator's case events (the XL size has 200,000): each recorded as the firm's
application records it, so its deadlines are computed by the rules, on top of the generated
ones; the same parameters give the same rows."""

from datetime import UTC, datetime
from typing import Any

import psycopg
from gstjobs.datagen import SIZES, Size, generate

from tests.conftest import database

SMALL = Size(firms=4, tasks=400, hearings=40, deadlines=80, events=24)
ANCHOR = datetime(2026, 11, 20, 2, 35, tzinfo=UTC)

FACTS = """
SELECT (SELECT count(*) FROM litigation.case_events),
       (SELECT count(DISTINCT tenant_id) FROM litigation.case_events),
       (SELECT count(*) FROM litigation.case_events AS e
        JOIN litigation.cases AS c ON c.tenant_id = e.tenant_id AND c.id = e.case_id),
       (SELECT count(*) FROM litigation.deadlines WHERE origin = 'manual'),
       (SELECT count(DISTINCT event_id) FROM litigation.deadlines WHERE origin = 'computed'),
       (SELECT min(id) FROM litigation.deadlines WHERE origin = 'computed')
           > (SELECT max(id) FROM litigation.deadlines WHERE origin = 'manual'),
       (SELECT count(*) FILTER (WHERE status = 'open') || '/' || count(*)
        FROM litigation.deadlines WHERE origin = 'computed' AND due_on < '2026-11-20'),
       (SELECT md5(string_agg(row(d.*)::text, '|' ORDER BY d.id))
        FROM (SELECT id, tenant_id, case_id, kind, due_on, status, rule_key, event_id
              FROM litigation.deadlines) AS d)
"""


def test_events_compute_their_deadlines_the_same_each_time(server: str) -> None:
    found = []
    for _ in range(2):
        with database(server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
            generate(conn, SMALL, seed=5, anchor=ANCHOR)
            facts: Any = conn.execute(FACTS).fetchone()
            # the identities moved past the generated ids: the application's next rows fit
            conn.execute(
                "INSERT INTO litigation.case_events (tenant_id, case_id, kind, event_on)"
                " SELECT tenant_id, case_id, 'scrutiny_notice_served', '2026-11-19'"
                " FROM litigation.case_events ORDER BY id LIMIT 1"
            )
            found.append(facts)
    events, firms, on_their_firms_cases, manual, computed_from, after, past, _digest = found[0]
    assert (events, firms, on_their_firms_cases, manual) == (24, 4, 24, 80)
    # every event kind chosen gives at least one deadline (a rule or two); ids after the others
    assert computed_from == 24 and after
    # most of those already past were acted on (met, missed, waived), as a practice would have
    still_open, all_past = (int(n) for n in past.split("/"))
    assert all_past >= 5 and still_open <= all_past // 2, past
    assert found[1] == found[0]  # deterministic


def test_the_sizes_the_benchmark_uses() -> None:
    """XL is ten times L, firm for firm: the same firm, ten times as many of them."""
    large, extra = SIZES["l"], SIZES["xl"]
    assert (extra.firms, extra.tasks, extra.hearings, extra.deadlines, extra.events) == (
        10 * large.firms,
        10 * large.tasks,
        10 * large.hearings,
        10 * large.deadlines,
        10 * large.events,
    )
    assert (extra.firms, extra.tasks, extra.hearings, extra.deadlines) == (
        10_000,
        10_000_000,
        1_000_000,
        2_000_000,
    )
