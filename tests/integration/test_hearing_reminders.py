"""hearing-reminders: 08:00 firm time, 7, 1 and 0 local days ahead, once each, caught up once."""

import contextlib
import threading
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import wait_until
from tests.integration.conftest import LONDON, at, notifications, params, run

OWNER = {("email", "aarav@mehta.example.in"), ("whatsapp", "+919800000003")}


def add_hearing(
    conn: psycopg.Connection[Any],
    hearing_id: int,
    starts_at: datetime,
    case_id: int = 1,
    tenant_id: int = 1,
) -> None:
    conn.execute(
        "INSERT INTO litigation.hearings (tenant_id, id, case_id, starts_at, forum, venue)"
        " VALUES (%s, %s, %s, %s, 'Adjudicating Authority (Joint Commissioner of CGST)',"
        " 'GST Bhavan, Churchgate, Mumbai')",
        (tenant_id, hearing_id, case_id, starts_at),
    )


def reminders(conn: psycopg.Connection[Any]) -> list[tuple[int, str, str]]:
    """(hearing id, T-n, channel) of every reminder."""
    return sorted(
        (int(r["dedupe_key"].split(":")[2]), r["dedupe_key"].split(":")[4], r["channel"])
        for r in notifications(conn, "hearing-reminder")
    )


def test_reminders_at_t7_t1_and_t0_local(firm: psycopg.Connection[Any]) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))

    counts = run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert counts["slots"] == 1 and counts["late"] == 0
    assert reminders(firm) == [(1, "T-7", "email"), (1, "T-7", "whatsapp")]
    email = next(r for r in notifications(firm) if r["channel"] == "email")
    assert "10:30 IST" in email["body"] and "Fri 20 Nov 2026" in email["body"]
    assert "in 7 days" in email["subject"] and "SCN/73/2025-26/00042" in email["subject"]
    assert "Joint Commissioner of CGST" in email["body"] and "Churchgate" in email["body"]
    assert params(email)["hearing_local"] == "Fri 20 Nov 2026, 10:30 IST"
    assert email["urgency"] > 0

    run(firm, "hearing-reminders", at("2026-11-19 07:55"))
    assert len(reminders(firm)) == 2  # the slot of 19 November has not come yet

    run(firm, "hearing-reminders", at("2026-11-19 08:05"))
    assert [r for r in reminders(firm) if r[1] == "T-1"] == [
        (1, "T-1", "email"),
        (1, "T-1", "whatsapp"),
    ]
    run(firm, "hearing-reminders", at("2026-11-20 08:05"))
    same_day = [r for r in notifications(firm) if r["dedupe_key"].split(":")[4] == "T-0"]
    assert len(same_day) == 2 and same_day[0]["urgency"] == 0 and "today" in same_day[0]["subject"]

    # every slot happens once: rerunning changes nothing
    run(firm, "hearing-reminders", at("2026-11-20 08:30"))
    assert len(reminders(firm)) == 6


def test_a_hearing_just_after_midnight_is_reminded_on_local_dates(
    firm: psycopg.Connection[Any],
) -> None:
    # 00:30 IST on 20 November is 19:00 UTC on 19 November
    add_hearing(firm, 1, at("2026-11-20 00:30"))
    run(firm, "hearing-reminders", at("2026-11-12 08:05"))
    assert reminders(firm) == []  # T-8 in UTC dates, not a reminder day
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert {r[1] for r in reminders(firm)} == {"T-7"}
    run(firm, "hearing-reminders", at("2026-11-19 08:05"))
    assert {r[1] for r in reminders(firm)} == {"T-7", "T-1"}
    assert "00:30 IST" in notifications(firm)[0]["body"]
    # at 08:00 on the day the hearing has begun (at 00:30): no reminder of the past
    counts = run(firm, "hearing-reminders", at("2026-11-20 08:05"))
    assert counts["already_begun"] == 1 and counts["notified"] == 0
    assert {r[1] for r in reminders(firm)} == {"T-7", "T-1"}


def test_outage_is_caught_up_once_late_and_a_stale_slot_is_missed(
    firm: psycopg.Connection[Any],
) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    run(firm, "hearing-reminders", at("2026-11-18 08:05"))
    # no run from 19 November 06:00 to 11:00; the 11:00 run sends the T-1 reminder, late
    counts = run(firm, "hearing-reminders", at("2026-11-19 11:00"))
    assert counts["slots"] == 1 and counts["late"] == 1 and counts["notified"] == 2
    assert run(firm, "hearing-reminders", at("2026-11-19 11:15"))["slots"] == 0
    assert len(reminders(firm)) == 2
    slot = firm.execute(
        "SELECT status, due_at FROM gstjobs.slots WHERE job = 'hearing-reminders' AND local_date = '2026-11-19'"
    ).fetchone()
    assert slot == ("late", at("2026-11-19 08:00"))

    # down for more than the catch-up limit (12 h): the 20 November slot is missed, not sent
    counts = run(firm, "hearing-reminders", at("2026-11-20 20:30"))
    assert counts["missed"] == 1 and counts["notified"] == 0
    assert {r[1] for r in reminders(firm)} == {"T-1"}

    # (pg_cron does not run jobs in a test's cloned database: no ticks are expected of it;
    # delivery set up, as in production, so that the reminders waiting are not a problem)
    firm.execute("UPDATE gstjobs.jobs SET scheduled_since = %s", (at("2026-11-20 20:40"),))
    firm.execute(
        "SELECT gstjobs.set_settings(jsonb_build_object('smtp.host', '127.0.0.1',"
        " 'whatsapp.url', 'http://127.0.0.1:9/v19.0/1', 'whatsapp.token', 't'))"
    )
    run(firm, "health-check", at("2026-11-20 20:40"))
    problems = firm.execute(
        "SELECT problems FROM gstjobs.health_reports ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert problems is not None
    assert [(p["code"], p["subject"]) for p in problems[0]] == [
        ("missed-slots", "hearing-reminders")
    ]


def test_a_moved_hearing_is_reminded_for_its_new_date(firm: psycopg.Connection[Any]) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    add_hearing(firm, 2, at("2026-11-20 12:00"), case_id=2)
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    firm.execute(
        "UPDATE litigation.hearings SET starts_at = %s WHERE id = 1", (at("2026-11-21 10:30"),)
    )
    firm.execute("UPDATE litigation.hearings SET status = 'adjourned' WHERE id = 2")
    run(firm, "hearing-reminders", at("2026-11-14 08:05"))
    assert (1, "T-7", "email") in reminders(firm)
    keys = {r["dedupe_key"] for r in notifications(firm)}
    assert any("2026-11-21" in k for k in keys) and any("2026-11-20" in k for k in keys)
    for day in ("2026-11-19", "2026-11-20", "2026-11-21"):
        run(firm, "hearing-reminders", at(f"{day} 08:05"))
    assert [r for r in reminders(firm) if r[0] == 2] == [(2, "T-7", "email")]  # Rohan: email only
    assert {r[1] for r in reminders(firm) if r[0] == 1} == {"T-7", "T-1", "T-0"}


@pytest.mark.parametrize("days", [("2026-03-28", "2026-03-31"), ("2026-10-24", "2026-10-27")])
def test_london_slot_happens_once_a_day_across_daylight_saving(
    firm: psycopg.Connection[Any], days: tuple[str, str]
) -> None:
    moment = datetime.fromisoformat(days[0]).replace(tzinfo=LONDON)
    end = datetime.fromisoformat(days[1]).replace(tzinfo=LONDON)
    while moment < end:  # polled every 15 minutes, as pg_cron does
        run(firm, "hearing-reminders", moment, tenant=2)
        moment += timedelta(minutes=15)
    slots = firm.execute(
        "SELECT local_date::text, status, due_at FROM gstjobs.slots"
        " WHERE job = 'hearing-reminders' AND tenant_id = 2 ORDER BY local_date"
    ).fetchall()
    assert [(d, s) for d, s, _ in slots] == [
        (str((datetime.fromisoformat(days[0]) + timedelta(days=i)).date()), "done")
        for i in range(3)
    ]
    for local_date, _, due_at in slots:
        assert due_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") == f"{local_date} 08:00"


def test_twenty_simultaneous_runs_make_one_set_of_reminders(
    db: str, firm: psycopg.Connection[Any]
) -> None:
    for hearing_id in range(1, 6):
        add_hearing(firm, hearing_id, at("2026-11-20 10:30"))
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def one_run() -> None:
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                barrier.wait()
                conn.execute(
                    "CALL gstjobs.run_job('hearing-reminders', as_of => %s)",
                    (at("2026-11-19 08:05"),),
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=one_run) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    statuses = [
        r[0]
        for r in firm.execute("SELECT status FROM gstjobs.runs WHERE job = 'hearing-reminders'")
    ]
    assert len(statuses) == 20 and set(statuses) <= {"succeeded", "skipped"}
    assert len(reminders(firm)) == 10  # 5 hearings x (email + WhatsApp), exactly once


def test_a_run_killed_midway_leaves_nothing_and_the_next_does_it_all(
    db: str, firm: psycopg.Connection[Any]
) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    blocker = psycopg.connect(db)
    blocker.execute("LOCK TABLE gstjobs.notifications IN EXCLUSIVE MODE")  # the run will wait here
    victim = psycopg.connect(db, autocommit=True)
    pid = victim.info.backend_pid

    def doomed_run() -> None:
        with contextlib.suppress(psycopg.Error):  # terminated below, as intended
            victim.execute(
                "CALL gstjobs.run_job('hearing-reminders', as_of => %s)", (at("2026-11-19 08:05"),)
            )

    thread = threading.Thread(target=doomed_run)
    thread.start()
    # killed only once it is inside its work: its run recorded, its insert waiting on the lock
    wait_until(
        db,
        "SELECT 1 FROM pg_stat_activity AS a JOIN gstjobs.runs AS r ON r.backend_pid = a.pid"
        " WHERE a.pid = %s AND a.wait_event_type = 'Lock' AND r.status = 'running'",
        (pid,),
    )
    firm.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(10)
    blocker.rollback()
    blocker.close()
    victim.close()

    assert notifications(firm) == []
    assert firm.execute("SELECT count(*) FROM gstjobs.slots").fetchone() == (0,)
    counts = run(firm, "hearing-reminders", at("2026-11-19 08:10"))
    assert counts["notified"] == 2
    statuses = [
        r[0]
        for r in firm.execute(
            "SELECT status FROM gstjobs.runs WHERE job = 'hearing-reminders' ORDER BY id"
        )
    ]
    assert statuses == ["crashed", "succeeded"]


def test_a_hearing_that_has_begun_is_not_reminded(firm: psycopg.Connection[Any]) -> None:
    # the 08:00 slot run an hour late (a catch-up after an outage): the 07:30 hearing is under
    # way, the 10:30 one is still to come
    add_hearing(firm, 1, at("2026-11-20 07:30"))
    add_hearing(firm, 2, at("2026-11-20 10:30"))
    counts = run(firm, "hearing-reminders", at("2026-11-20 09:00"))
    assert counts["found"] == 2 and counts["already_begun"] == 1
    assert reminders(firm) == [(2, "T-0", "email"), (2, "T-0", "whatsapp")]


def test_a_late_reminder_says_so_and_counts_days_from_when_it_is_sent(
    firm: psycopg.Connection[Any],
) -> None:
    firm.execute('SELECT gstjobs.set_settings(\'{"slots.catchup_hours": "24"}\')')
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    run(firm, "hearing-reminders", at("2026-11-18 08:05"), tenant=1)
    # down from the evening of the 18th to 07:00 on the 20th: the 19th's slot (T-1) runs now,
    # when the hearing is today, not tomorrow
    counts = run(firm, "hearing-reminders", at("2026-11-20 07:00"), tenant=1)
    assert counts["late"] == 1 and counts["notified"] == 2
    email = next(n for n in notifications(firm, "hearing-reminder") if n["channel"] == "email")
    assert email["subject"].startswith("Hearing today: SCN/73/2025-26/00042")
    assert "is listed today, Fri 20 Nov 2026, 10:30 IST" in email["body"]
    assert (
        "(This message was due at Thu 19 Nov 2026, 08:00 IST and is sent late, at"
        " Fri 20 Nov 2026, 07:00 IST, after a delay.)" in email["body"]
    )
    # the day's own slot at 08:00 has the same reminder to send (T-0): it is not sent twice
    add_hearing(firm, 2, at("2026-11-27 10:30"))
    counts = run(firm, "hearing-reminders", at("2026-11-20 08:05"), tenant=1)
    assert counts["notified"] == 2  # hearing 2's T-7 only
    assert [r for r in reminders(firm) if r[0] == 1] == [
        (1, "T-0", "email"),
        (1, "T-0", "whatsapp"),
    ]
    # on time, nothing is added
    on_time = [
        n
        for n in notifications(firm, "hearing-reminder")
        if n["channel"] == "email" and "27 Nov" in n["body"]
    ]
    assert on_time and "sent late" not in on_time[0]["body"]


def test_what_a_run_writes_does_not_depend_on_the_sessions_date_style(
    firm: psycopg.Connection[Any],
) -> None:
    """A date in a notification's key went through the session's DateStyle: a run in a session
    with another (a DBA's `datestyle = 'SQL, DMY'`, a client's PGDATESTYLE) wrote 20/11/2026
    where the others write 2026-11-20, and the same reminder would not be recognised as one."""
    add_hearing(firm, 1, at("2026-11-20 10:30"))

    def written(datestyle: str, intervalstyle: str) -> list[tuple[str, str, str]]:
        firm.execute("DELETE FROM gstjobs.notifications")
        firm.execute("DELETE FROM gstjobs.slots")
        firm.execute(f"SET DateStyle = '{datestyle}'")
        firm.execute(f"SET IntervalStyle = '{intervalstyle}'")
        try:
            run(firm, "hearing-reminders", at("2026-11-19 08:05"))
        finally:
            firm.execute("RESET DateStyle")
            firm.execute("RESET IntervalStyle")
        return sorted((r["dedupe_key"], r["subject"], r["body"]) for r in notifications(firm))

    iso = written("ISO, MDY", "postgres")
    assert iso and all(":2026-11-20:" in key for key, _, _ in iso)
    assert written("SQL, DMY", "sql_standard") == iso
    assert written("German", "iso_8601") == iso
