"""deadline-alerts (09:00 firm time) and analytics-snapshot (end of the firm's day)."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import at, notifications, recipients, run

AARAV = {("email", "aarav@mehta.example.in"), ("whatsapp", "+919800000003")}
PRIYA = {("email", "priya@mehta.example.in"), ("whatsapp", "+919800000001")}


def add_deadline(
    conn: psycopg.Connection[Any], deadline_id: int, due_on: str, status: str = "open"
) -> None:
    conn.execute(
        "INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, status, owner_id)"
        " VALUES (1, %s, 1, 'Appeal to Appellate Authority (APL-01)', %s, %s, 3)",
        (deadline_id, due_on, status),
    )


def alert_days(conn: psycopg.Connection[Any]) -> list[str]:
    return sorted({r["dedupe_key"].split(":")[4] for r in notifications(conn, "deadline-alert")})


def test_deadline_alerts_t7_t3_t1_t0_then_overdue_once_to_owner_and_partner(
    firm: psycopg.Connection[Any],
) -> None:
    add_deadline(firm, 1, "2026-11-20")
    day = date(2026, 11, 12)
    while day <= date(2026, 11, 23):
        run(firm, "deadline-alerts", at(f"{day} 09:05"))
        day += timedelta(days=1)
    assert alert_days(firm) == ["T-0", "T-1", "T-3", "T-7"]
    alerts = notifications(firm, "deadline-alert")
    assert recipients(alerts) == AARAV and len(alerts) == 8
    assert "Appeal to Appellate Authority (APL-01)" in alerts[0]["body"]
    assert "Fri 20 Nov 2026" in alerts[0]["body"]
    overdue = notifications(firm, "deadline-overdue")
    assert recipients(overdue) == AARAV | PRIYA  # once, to the owner and escalated to the partner
    assert "Owner: Aarav Shah" in overdue[0]["body"]


def test_met_and_waived_deadlines_stop_alerting(firm: psycopg.Connection[Any]) -> None:
    add_deadline(firm, 1, "2026-11-20")
    add_deadline(firm, 2, "2026-11-20")
    run(firm, "deadline-alerts", at("2026-11-13 09:05"))
    assert len(notifications(firm)) == 4
    firm.execute("UPDATE litigation.deadlines SET status = 'met' WHERE id = 1")
    firm.execute("UPDATE litigation.deadlines SET status = 'waived' WHERE id = 2")
    for day in ("2026-11-17", "2026-11-19", "2026-11-20", "2026-11-21"):
        run(firm, "deadline-alerts", at(f"{day} 09:05"))
    assert len(notifications(firm)) == 4


def test_deadline_alerts_wait_for_nine(firm: psycopg.Connection[Any]) -> None:
    add_deadline(firm, 1, "2026-11-20")
    assert run(firm, "deadline-alerts", at("2026-11-19 08:55"))["slots"] == 0
    assert run(firm, "deadline-alerts", at("2026-11-19 09:00"))["notified"] == 2


ANALYTICS_FIXTURE = """
INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, status, due_at, sla_due_at, completed_at) VALUES
    -- open, one overdue as of 20 Nov 23:45 IST
    (1, 1, 1, 'Reply', 3, 'open', '2026-11-19 10:00+05:30', '2026-11-18 10:00+05:30', NULL),
    (1, 2, 1, 'Paper book', 3, 'in_progress', '2026-11-25 10:00+05:30', '2026-11-24 10:00+05:30', NULL),
    -- SLA met, SLA missed, and cancelled (not counted) in the last 30 days
    (1, 3, 1, 'Invoices', 3, 'completed', '2026-11-10 10:00+05:30', '2026-11-09 10:00+05:30', '2026-11-09 09:00+05:30'),
    (1, 4, 1, 'Reconcile', 3, 'completed', '2026-11-10 10:00+05:30', '2026-11-09 10:00+05:30', '2026-11-09 11:00+05:30'),
    (1, 5, 1, 'Vakalatnama', 3, 'cancelled', '2026-11-10 10:00+05:30', '2026-11-09 10:00+05:30', NULL);
INSERT INTO litigation.hearings (tenant_id, id, case_id, starts_at, forum, status) VALUES
    (1, 1, 1, '2026-11-23 10:30+05:30', 'Adjudicating Authority', 'scheduled'),
    (1, 2, 2, '2026-11-30 10:30+05:30', 'Appellate Authority', 'scheduled'),  -- beyond 7 days
    (1, 3, 2, '2026-11-22 10:30+05:30', 'Appellate Authority', 'cancelled');
INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, status, owner_id) VALUES
    (1, 1, 1, 'Reply to SCN', '2026-11-15', 'missed', 3),
    (1, 2, 1, 'Payment', '2026-11-18', 'open', 3),   -- passed, still open: missed
    (1, 3, 1, 'Appeal', '2026-11-25', 'open', 3),
    (1, 4, 1, 'Rectification', '2026-11-10', 'met', 3);
"""


def test_analytics_snapshot_figures_are_right_and_written_once(
    firm: psycopg.Connection[Any],
) -> None:
    firm.execute(ANALYTICS_FIXTURE.encode())
    counts = run(firm, "analytics-snapshot", at("2026-11-20 23:50"), tenant=1)
    assert counts["snapshots"] == 1
    row = firm.execute(
        "SELECT local_date, open_cases_by_stage, demand_in_dispute, hearings_next_7_days,"
        " open_tasks, overdue_tasks, sla_compliance, deadlines_missed, anomalies"
        " FROM gstjobs.analytics_snapshots WHERE tenant_id = 1"
    ).fetchone()
    assert row == (
        date(2026, 11, 20),
        {"show_cause": 1, "first_appeal": 1},
        Decimal("1730000.00"),
        # SLA compliance: of the tasks whose SLA fell in the last 30 days (1 open past it,
        # 3 met, 4 missed; 5 cancelled does not count) one in three met it
        1,
        2,
        1,
        Decimal("0.3333"),
        2,
        [],
    )
    assert run(firm, "analytics-snapshot", at("2026-11-20 23:59"), tenant=1)["snapshots"] == 0
    assert firm.execute("SELECT count(*) FROM gstjobs.analytics_snapshots").fetchone() == (1,)


def test_one_snapshot_per_firm_per_local_date(firm: psycopg.Connection[Any]) -> None:
    run(firm, "analytics-snapshot", at("2026-11-20 23:50"))  # 18:20 in London: not its time yet
    assert firm.execute("SELECT tenant_id FROM gstjobs.analytics_snapshots").fetchall() == [(1,)]
    run(firm, "analytics-snapshot", at("2026-11-21 05:20"))  # 23:50 in London
    assert firm.execute(
        "SELECT tenant_id, local_date::text FROM gstjobs.analytics_snapshots ORDER BY 1"
    ).fetchall() == [(1, "2026-11-20"), (2, "2026-11-20")]


def history(conn: psycopg.Connection[Any], days: int, open_tasks: list[int]) -> None:
    conn.execute(
        "INSERT INTO gstjobs.analytics_snapshots (tenant_id, local_date, open_cases_by_stage,"
        " demand_in_dispute, hearings_next_7_days, open_tasks, overdue_tasks, sla_compliance,"
        " deadlines_missed)"
        " SELECT 1, date '2026-11-20' - d, '{}', 1730000, 1, (%s::int[])[d], 1, 0.5, 2"
        " FROM generate_series(1, %s) AS d",
        (open_tasks, days),
    )


@pytest.mark.parametrize(
    ("days", "open_tasks", "anomalous"),
    [
        (10, [20, 21, 19, 20, 22, 18, 20, 21, 19, 20], True),  # 2 open tasks is far below ~20
        (6, [20, 21, 19, 20, 22, 18], False),  # fewer than 7 days of history: no judgement
        (10, [2, 3, 1, 2, 2, 3, 1, 2, 2, 2], False),  # 2 is normal here
    ],
)
def test_anomalies_against_the_trailing_28_days(
    firm: psycopg.Connection[Any], days: int, open_tasks: list[int], anomalous: bool
) -> None:
    firm.execute(ANALYTICS_FIXTURE.encode())
    history(firm, days, open_tasks)
    counts = run(firm, "analytics-snapshot", at("2026-11-20 23:50"), tenant=1)
    anomalies = firm.execute(
        "SELECT anomalies FROM gstjobs.analytics_snapshots WHERE local_date = '2026-11-20'"
    ).fetchone()
    assert anomalies is not None
    alerts = notifications(firm, "analytics-anomaly")
    if anomalous:
        assert [a["metric"] for a in anomalies[0]] == ["open_tasks"]
        assert counts["anomalies"] == 1
        assert recipients(alerts) == {("email", "kavya@mehta.example.in")}  # the admin
        assert "open_tasks: 2" in alerts[0]["body"]
    else:
        assert anomalies[0] == [] and alerts == []


def test_a_slot_caught_up_the_next_day_counts_from_that_day_and_is_not_sent_twice(
    firm: psycopg.Connection[Any],
) -> None:
    firm.execute('SELECT gstjobs.set_settings(\'{"slots.catchup_hours": "30"}\')')
    add_deadline(firm, 1, "2026-11-20")
    add_deadline(firm, 2, "2026-11-21")
    run(firm, "deadline-alerts", at("2026-11-18 09:05"), tenant=1)
    # down from then until 08:00 on the 20th: the 19th's slot (T-1 for deadline 1) runs when
    # the deadline is today; the 20th's own slot then has nothing new for it
    run(firm, "deadline-alerts", at("2026-11-20 08:00"), tenant=1)
    run(firm, "deadline-alerts", at("2026-11-20 09:05"), tenant=1)

    def of(kind: str, deadline: str) -> list[dict[str, Any]]:
        return [n for n in notifications(firm, kind) if n["dedupe_key"].split(":")[2] == deadline]

    first = of("deadline-alert", "1")
    assert sorted(n["dedupe_key"].split(":")[4] for n in first) == ["T-0", "T-0"]
    email = next(n for n in first if n["channel"] == "email")
    assert email["subject"].startswith("Deadline today: ") and "sent late" in email["body"]
    # down again until 08:00 on the 22nd: the 21st's slot (T-0 for deadline 2) comes a day
    # after the deadline's day; no "yesterday" countdown, the 22nd's slot sends the overdue
    run(firm, "deadline-alerts", at("2026-11-22 08:00"), tenant=1)
    second = of("deadline-alert", "2")
    # T-3 on the 18th, T-1 on the 20th; none for the 21st's slot
    assert sorted(n["dedupe_key"].split(":")[4] for n in second) == ["T-1", "T-1", "T-3", "T-3"]
    run(firm, "deadline-alerts", at("2026-11-22 09:05"), tenant=1)
    assert recipients(of("deadline-overdue", "2")) == AARAV | PRIYA
