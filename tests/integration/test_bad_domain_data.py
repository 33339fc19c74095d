"""Bad domain data reaching each job: the job does what it can, skips and counts what it
cannot, and never fails the whole run."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.integration.conftest import at, notifications, run

# Firm 1's defects: a case with no owner, an owner nobody can reach, a task with no assignee,
# an assignee with neither email nor phone, a deadline with no owner, a hearing long past but
# still "scheduled"; and three firms in zones a developer rarely tests.
DEFECTS = """
INSERT INTO litigation.cases (tenant_id, id, client_id, reference, section, stage, owner_id) VALUES
    (1, 11, 1, 'SCN/74/2025-26/00900', '74', 'show_cause', NULL),
    (1, 12, 1, 'SCN/74/2025-26/00901', '74', 'show_cause', 5);
INSERT INTO litigation.hearings (tenant_id, id, case_id, starts_at, forum) VALUES
    (1, 11, 11, '2026-11-21 10:30+05:30', 'Adjudicating Authority'),  -- no owner
    (1, 12, 12, '2026-11-21 11:30+05:30', 'Adjudicating Authority'),  -- owner unreachable
    (1, 13, 1, '2026-11-21 12:30+05:30', 'Adjudicating Authority'),   -- fine
    (1, 14, 1, '2026-11-17 10:30+05:30', 'Adjudicating Authority');   -- past, never updated
INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, sla_due_at) VALUES
    (1, 11, 1, 'No assignee', NULL, '2026-11-20 06:00+05:30'),
    (1, 12, 1, 'Unreachable assignee', 5, '2026-11-20 06:00+05:30'),
    (1, 13, NULL, 'No case', 3, '2026-11-20 06:00+05:30');
INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, owner_id) VALUES
    (1, 11, 1, 'Reply to DRC-01', '2026-11-21', NULL),
    (1, 12, 1, 'Written submissions', '2026-11-19', NULL),
    (1, 13, 1, 'Vakalatnama', '2026-11-21', 3);
INSERT INTO litigation.tenants (id, name, timezone) VALUES
    (3, 'Kathmandu desk', 'Asia/Kathmandu'),
    (4, 'Newfoundland desk', 'America/St_Johns'),
    (5, 'Chatham Islands desk', 'Pacific/Chatham');
INSERT INTO litigation.members (tenant_id, id, name, email, role) VALUES
    (3, 31, 'Sita Thapa', 'sita@ktm.example', 'partner'),
    (4, 41, 'Jean Power', 'jean@nl.example', 'partner'),
    (5, 51, 'Aroha Tuuta', 'aroha@chatham.example', 'partner');
INSERT INTO litigation.clients (tenant_id, id, name) VALUES (3, 31, 'A'), (4, 41, 'B'), (5, 51, 'C');
INSERT INTO litigation.cases (tenant_id, id, client_id, reference, section, stage, owner_id) VALUES
    (3, 31, 31, 'K-1', '107', 'first_appeal', 31),
    (4, 41, 41, 'N-1', '107', 'first_appeal', 41),
    (5, 51, 51, 'C-1', '107', 'first_appeal', 51);
INSERT INTO litigation.hearings (tenant_id, id, case_id, starts_at, forum) VALUES
    (3, 31, 31, '2026-11-21 10:00+05:45', 'Tribunal'),
    (4, 41, 41, '2026-11-21 10:00-03:30', 'Tribunal'),
    (5, 51, 51, '2026-11-21 10:00+13:45', 'Tribunal');
"""


def test_sla_check_counts_what_it_cannot_tell_anyone(firm: psycopg.Connection[Any]) -> None:
    firm.execute(DEFECTS.encode())
    counts = run(firm, "sla-check", at("2026-11-20 07:00"))
    assert counts["sla-breach.tasks"] == 3 and counts["sla-breach.skipped"] == 2
    told = notifications(firm, "sla-breach")
    assert {n["recipient"] for n in told} == {"aarav@mehta.example.in", "+919800000003"}
    assert "case no case" in told[0]["body"]


def test_hearing_reminders_skip_unreachable_owners_and_count_stale_hearings(
    firm: psycopg.Connection[Any],
) -> None:
    firm.execute(DEFECTS.encode())
    counts = run(firm, "hearing-reminders", at("2026-11-20 08:05"), tenant=1)
    assert counts["found"] == 3 and counts["skipped"] == 2 and counts["past_still_scheduled"] == 1
    assert {n["subject"] for n in notifications(firm, "hearing-reminder")} == {
        "Hearing tomorrow: SCN/73/2025-26/00042 before Adjudicating Authority"
    }


def test_deadline_alerts_skip_a_deadline_without_owner_and_escalate_its_overdue(
    firm: psycopg.Connection[Any],
) -> None:
    firm.execute(DEFECTS.encode())
    counts = run(firm, "deadline-alerts", at("2026-11-20 09:05"), tenant=1)
    assert counts["found"] == 2 and counts["skipped"] == 1 and counts["overdue"] == 1
    overdue = notifications(firm, "deadline-overdue")
    assert overdue and all("Owner: nobody" in n["body"] for n in overdue)
    assert {n["recipient"] for n in overdue} == {"priya@mehta.example.in", "+919800000001"}


def test_analytics_for_a_firm_with_nothing_yet(firm: psycopg.Connection[Any]) -> None:
    firm.execute(DEFECTS.encode())
    # 23:50 in Mumbai is past 23:45 in Kathmandu and in Chatham (already 21 Nov there): the
    # desks with no tasks get their rows
    counts = run(firm, "analytics-snapshot", at("2026-11-20 23:50"))
    assert counts["snapshots"] == 3
    empty = firm.execute(
        "SELECT open_tasks, overdue_tasks, demand_in_dispute, sla_compliance, open_cases_by_stage"
        " FROM gstjobs.analytics_snapshots WHERE tenant_id = 3"
    ).fetchone()
    assert empty == (0, 0, 0, None, {"first_appeal": 1})


def test_firms_in_unusual_zones_get_their_slot_once_at_local_eight(
    firm: psycopg.Connection[Any],
) -> None:
    firm.execute(DEFECTS.encode())
    # installed before: each desk's slot of 18 Nov was done
    firm.execute(
        "INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at)"
        " SELECT 'hearing-reminders', id, '2026-11-18', 'done', now() FROM litigation.tenants"
        " WHERE id IN (3, 4, 5)"
    )
    moment = datetime(2026, 11, 18, 12, 5, tzinfo=UTC)
    while moment <= datetime(2026, 11, 21, 0, 5, tzinfo=UTC):
        run(firm, "hearing-reminders", moment)
        moment += timedelta(minutes=15)
    slots = firm.execute(
        "SELECT s.tenant_id, s.local_date::text, to_char(s.due_at AT TIME ZONE t.timezone, 'HH24:MI'),"
        " s.status FROM gstjobs.slots AS s JOIN litigation.tenants AS t ON t.id = s.tenant_id"
        " WHERE s.tenant_id IN (3, 4, 5) ORDER BY 1, 2"
    ).fetchall()
    # each firm's 08:00 in its own zone, once per local date, never late with 15-minute polls
    # 18 Nov was there before; until 00:05 UTC on 21 Nov, Chatham (UTC+13:45) has had its 21st
    assert [(t, d[-2:]) for t, d, _, _ in slots] == [
        (3, "18"), (3, "19"), (3, "20"), (4, "18"), (4, "19"), (4, "20"),
        (5, "18"), (5, "19"), (5, "20"), (5, "21"),
    ]  # fmt: skip
    assert {(t, time, status) for t, d, time, status in slots if d > "2026-11-18"} == {
        (3, "08:00", "done"),
        (4, "08:00", "done"),
        (5, "08:00", "done"),
    }
    assert len(slots) == len({(t, d) for t, d, _, _ in slots})
    bodies = {n["recipient"]: n["body"] for n in notifications(firm, "hearing-reminder")}
    assert "Sat 21 Nov 2026, 10:00 +0545" in bodies["sita@ktm.example"]
    assert "Sat 21 Nov 2026, 10:00 NST" in bodies["jean@nl.example"]
    assert "Sat 21 Nov 2026, 10:00 +1345" in bodies["aroha@chatham.example"]
