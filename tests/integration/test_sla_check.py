"""sla-check: notify the assignee once at breach, the manager once after the escalation delay."""

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import at, notifications, recipients, run

AARAV = {("email", "aarav@mehta.example.in"), ("whatsapp", "+919800000003")}
ROHAN = {("email", "rohan@mehta.example.in")}  # no phone: email only


def add_task(conn: psycopg.Connection[Any], task_id: int, **columns: Any) -> None:
    values = {
        "tenant_id": 1,
        "id": task_id,
        "case_id": 1,
        "title": "Draft reply to SCN (DRC-06)",
        "assignee_id": 3,
        "priority": "high",
        **columns,
    }
    names = ", ".join(values)
    conn.execute(
        f"INSERT INTO litigation.tasks ({names}) VALUES ({', '.join(['%s'] * len(values))})",
        list(values.values()),
    )


@pytest.mark.parametrize(("column", "kind"), [("sla_due_at", "sla-breach"), ("due_at", "overdue")])
def test_breach_notifies_assignee_once_then_manager_once(
    firm: psycopg.Connection[Any], column: str, kind: str
) -> None:
    due = at("2026-11-20 10:00")
    add_task(firm, 1, **{column: due})

    assert run(firm, "sla-check", due - timedelta(seconds=30))["found"] == 0
    assert notifications(firm) == []

    counts = run(firm, "sla-check", due + timedelta(seconds=30))
    assert counts[f"{kind}.tasks"] == 1 and counts["notified"] == 2
    sent = notifications(firm, kind)
    assert recipients(sent) == AARAV
    email = next(r for r in sent if r["channel"] == "email")
    assert "10:00 IST" in email["body"] and "SCN/73/2025-26/00042" in email["body"]
    assert "section 73" in email["body"] and "Balaji Steel Traders" in email["body"]
    assert email["subject"].endswith("(SCN/73/2025-26/00042)")

    # rerun, and a run just before the delay is over: nothing more
    assert run(firm, "sla-check", due + timedelta(minutes=5))["notified"] == 0
    assert run(firm, "sla-check", due + timedelta(hours=23, minutes=59))["notified"] == 0

    counts = run(firm, "sla-check", due + timedelta(hours=24, seconds=30))
    assert counts[f"{kind}-escalation.tasks"] == 1
    escalated = notifications(firm, f"{kind}-escalation")
    assert recipients(escalated) == ROHAN
    assert "Aarav Shah" in escalated[0]["body"] and "still open" in escalated[0]["body"]

    assert run(firm, "sla-check", due + timedelta(hours=48))["notified"] == 0
    assert len(notifications(firm)) == 3


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_closed_tasks_are_not_notified(firm: psycopg.Connection[Any], status: str) -> None:
    due = at("2026-11-20 10:00")
    add_task(
        firm,
        1,
        sla_due_at=due,
        due_at=due,
        status=status,
        completed_at=due - timedelta(hours=1) if status == "completed" else None,
    )
    assert run(firm, "sla-check", due + timedelta(days=3))["found"] == 0
    assert notifications(firm) == []


def test_completing_before_the_delay_stops_the_escalation(firm: psycopg.Connection[Any]) -> None:
    due = at("2026-11-20 10:00")
    add_task(firm, 1, sla_due_at=due)
    run(firm, "sla-check", due + timedelta(minutes=1))
    firm.execute(
        "UPDATE litigation.tasks SET status = 'completed', completed_at = %s",
        (due + timedelta(hours=2),),
    )
    assert run(firm, "sla-check", due + timedelta(hours=25))["escalated"] == 0
    assert notifications(firm, "sla-breach-escalation") == []


def test_a_moved_due_time_is_checked_again(firm: psycopg.Connection[Any]) -> None:
    due = at("2026-11-20 10:00")
    add_task(firm, 1, sla_due_at=due)
    run(firm, "sla-check", due + timedelta(minutes=1))
    later = due + timedelta(days=2)
    firm.execute("UPDATE litigation.tasks SET sla_due_at = %s", (later,))
    assert run(firm, "sla-check", due + timedelta(hours=25))["notified"] == 0
    assert run(firm, "sla-check", later + timedelta(minutes=1))["notified"] == 2
    assert len(notifications(firm, "sla-breach")) == 4


def test_no_manager_escalates_to_the_partners(firm: psycopg.Connection[Any]) -> None:
    due = at("2026-11-20 10:00")
    add_task(firm, 1, sla_due_at=due, assignee_id=2)  # Rohan reports to Priya, the partner
    firm.execute("UPDATE litigation.members SET manager_id = NULL WHERE id = 2")
    run(firm, "sla-check", due + timedelta(hours=25))
    assert recipients(notifications(firm, "sla-breach-escalation")) == {
        ("email", "priya@mehta.example.in"),
        ("whatsapp", "+919800000001"),
    }


def test_tasks_nobody_can_be_told_about_are_counted_not_fatal(
    firm: psycopg.Connection[Any],
) -> None:
    due = at("2026-11-20 10:00")
    add_task(firm, 1, sla_due_at=due, assignee_id=None)
    add_task(firm, 2, sla_due_at=due, assignee_id=5)  # Neha: no email, no phone
    add_task(firm, 3, sla_due_at=due)
    counts = run(firm, "sla-check", due + timedelta(minutes=1))
    assert counts["sla-breach.tasks"] == 3 and counts["sla-breach.skipped"] == 2
    assert counts["notified"] == 2


def test_one_tenant_run_leaves_the_other_firms_alone(firm: psycopg.Connection[Any]) -> None:
    due = at("2026-11-20 10:00")
    add_task(firm, 1, sla_due_at=due)
    firm.execute(
        "INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, sla_due_at)"
        " VALUES (2, 2, 3, 'Prepare tribunal paper book', 6, %s)",
        (due,),
    )
    counts = run(firm, "sla-check", due + timedelta(minutes=1), tenant=2)
    assert counts["sla-breach.tasks"] == 1
    assert {r["tenant_id"] for r in notifications(firm)} == {2}
    london = notifications(firm)[0]
    assert "04:30 GMT" in london["body"]  # 10:00 IST is 04:30 in London in November


def test_a_backlog_is_worked_through_in_committed_batches(firm: psycopg.Connection[Any]) -> None:
    firm.execute("INSERT INTO gstjobs.settings (key, value) VALUES ('sla.batch_size', '2')")
    due = at("2026-11-20 10:00")
    for task_id in range(1, 6):
        add_task(firm, task_id, sla_due_at=due - timedelta(minutes=task_id))
    counts = run(firm, "sla-check", due + timedelta(minutes=1))
    assert counts["found"] == 5 and counts["notified"] == 10
    assert firm.execute("SELECT count(*) FROM gstjobs.runs").fetchone() == (1,)
    assert run(firm, "sla-check", due + timedelta(minutes=2))["found"] == 0
