"""The three local-time jobs across both of London's 2026 clock changes (29 March: 01:00 GMT
becomes 02:00 BST; 25 October: 02:00 BST becomes 01:00 GMT), polled every 15 minutes as
pg_cron polls them, for the London firm with real hearings, deadlines and tasks: every slot
once a local day, each at its local time by the clock of that day, and every reminder, alert
and snapshot made by the run of the right slot."""

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import LONDON, notifications, run

JOBS = {"hearing-reminders": "08:00", "deadline-alerts": "09:00", "analytics-snapshot": "23:45"}

CROSSINGS = {
    # (first local day polled, the day the clocks change, the zone's names before and after)
    "spring forward": ("2026-03-27", "2026-03-29", "GMT", "BST"),
    "fall back": ("2026-10-23", "2026-10-25", "BST", "GMT"),
}


def local(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day} {clock}").replace(tzinfo=LONDON)


def made_at(conn: psycopg.Connection[Any], run_id: int) -> str:
    """The local London date and time of the moment the run replayed (its as_of)."""
    as_of = conn.execute("SELECT as_of FROM gstjobs.runs WHERE id = %s", (run_id,)).fetchone()
    assert as_of is not None
    return str(as_of[0].astimezone(LONDON).strftime("%Y-%m-%d %H:%M"))


@pytest.mark.parametrize("crossing", list(CROSSINGS))
def test_local_time_jobs_keep_local_time_across_a_clock_change(
    firm: psycopg.Connection[Any], crossing: str
) -> None:
    first, change, _, after = CROSSINGS[crossing]
    change_day = datetime.fromisoformat(change).date()
    day_after = str(change_day + timedelta(days=1))
    # case 3 is the London firm's; Vikram (member 6, email) owns it
    firm.execute(
        "INSERT INTO litigation.hearings (tenant_id, id, case_id, starts_at, forum) VALUES"
        " (2, 1, 3, %s, 'GST Appellate Tribunal'), (2, 2, 3, %s, 'GST Appellate Tribunal')",
        (local(change, "10:30"), local(day_after, "10:30")),
    )
    firm.execute(
        "INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, owner_id) VALUES"
        " (2, 1, 3, 'appeal to the Tribunal', %s, 6), (2, 2, 3, 'written submissions', %s, 6)",
        (change, day_after),
    )
    moment, end = local(first, "00:00"), local(first, "00:00") + timedelta(days=4)
    while moment < end:  # every 15 minutes of four local days, as pg_cron polls
        for job in JOBS:
            run(firm, job, moment, tenant=2)
        moment += timedelta(minutes=15)

    # each job's slot: once a local day, due at its local time by that day's clock, taken by
    # the first poll at or after it. The first poll, at midnight, also takes the evening slot
    # of the day before, 15 minutes old, as a newly installed gstjobs does (within catch-up).
    start = datetime.fromisoformat(first).date()
    for job, clock in JOBS.items():
        slots = firm.execute(
            "SELECT local_date::text, status, due_at, run_id FROM gstjobs.slots"
            " WHERE job = %s AND tenant_id = 2 ORDER BY local_date",
            (job,),
        ).fetchall()
        evening = job == "analytics-snapshot"
        days = [str(start + timedelta(days=i)) for i in range(-evening, 4)]
        assert [(d, s) for d, s, _, _ in slots] == [(d, "done") for d in days], job
        for local_date, _, due_at, run_id in slots:
            assert due_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") == f"{local_date} {clock}"
            taken = f"{first} 00:00" if local_date < first else f"{local_date} {clock}"
            assert made_at(firm, run_id) == taken, (job, local_date)

    # hearing reminders: the day before and the day itself, at 08:00 local, the time shown in
    # the zone's name of the hearing's day
    reminded = {
        (r["dedupe_key"].split(":")[2], r["dedupe_key"].split(":")[4]): r
        for r in notifications(firm, "hearing-reminder")
    }
    assert set(reminded) == {("1", "T-1"), ("1", "T-0"), ("2", "T-1"), ("2", "T-0")}
    for (hearing, ahead), note in reminded.items():
        day = change if hearing == "1" else day_after
        sent_on = str(datetime.fromisoformat(day).date() - timedelta(days=ahead == "T-1"))
        assert made_at(firm, note["run_id"]) == f"{sent_on} 08:00", (hearing, ahead)
        assert note["recipient"] == "vikram@mehta.example.co.uk"
        assert f"10:30 {after}" in note["body"], note["body"]
    # deadline alerts: 3 days, 1 day and 0 days ahead within the window, at 09:00 local
    alerted = {
        (r["dedupe_key"].split(":")[2], r["dedupe_key"].split(":")[4]): made_at(firm, r["run_id"])
        for r in notifications(firm, "deadline-alert")
    }
    for deadline, due in (("1", change), ("2", day_after)):
        for ahead in (3, 1, 0):
            on = datetime.fromisoformat(due).date() - timedelta(days=ahead)
            if str(on) >= first:
                assert alerted[(deadline, f"T-{ahead}")] == f"{on} 09:00", (deadline, ahead)
    # the day after the change day's deadline, at 09:00 local, it is overdue: alerted once
    # (the other is overdue after the window)
    overdue = notifications(firm, "deadline-overdue")
    assert [(n["dedupe_key"].split(":")[2], made_at(firm, n["run_id"])) for n in overdue] == [
        ("1", f"{day_after} 09:00")
    ]
    # one snapshot a local day, made at 23:45 local
    snapshots = firm.execute(
        "SELECT local_date::text, run_id FROM gstjobs.analytics_snapshots"
        " WHERE tenant_id = 2 ORDER BY local_date"
    ).fetchall()
    assert len(snapshots) == 5
    for local_date, run_id in snapshots[1:]:
        assert made_at(firm, run_id) == f"{local_date} 23:45"
