"""health-check reports and alerts once per problem; purge-history keeps what it must."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from gstjobs.resources import load_plpy_module

from tests.integration.conftest import notifications, run

OPS = "ops@mehta.example.in"


@pytest.fixture
def watched(firm: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Ops mail and the SMTP server set; no ticks expected of any job yet (pg_cron does not run
    in test clones)."""
    firm.execute("INSERT INTO gstjobs.settings (key, value) VALUES ('ops.email', %s)", (OPS,))
    firm.execute("INSERT INTO gstjobs.settings (key, value) VALUES ('smtp.host', '127.0.0.1')")
    firm.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
    return firm


def health(
    conn: psycopg.Connection[Any],
) -> tuple[bool, list[tuple[str, str]], list[dict[str, Any]]]:
    run(conn, "health-check", datetime.now(UTC))
    row = conn.execute(
        "SELECT healthy, problems FROM gstjobs.health_reports ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return row[0], [(p["code"], p["subject"]) for p in row[1]], row[1]


def add_notification(conn: psycopg.Connection[Any], key: str, status: str, **columns: Any) -> None:
    values = {
        "tenant_id": 1,
        "kind": "sla-breach",
        "channel": "email",
        "recipient": "a@b.in",
        "subject": "s",
        "body": "b",
        "status": status,
        "dedupe_key": key,
        **columns,
    }
    conn.execute(
        f"INSERT INTO gstjobs.notifications ({', '.join(values)})"
        f" VALUES ({', '.join(['%s'] * len(values))})",
        list(values.values()),
    )


def test_healthy_when_all_is_well(watched: psycopg.Connection[Any]) -> None:
    healthy, problems, _ = health(watched)
    assert healthy and problems == []
    assert notifications(watched) == []


def test_problems_are_reported_with_advice_and_alerted_once(
    db: str, watched: psycopg.Connection[Any], busy_session: tuple[int, datetime, datetime]
) -> None:
    conn = watched
    # sla-check paused for two hours, its schedule every minute
    conn.execute("UPDATE cron.job SET active = false WHERE jobname = 'sla-check'")
    conn.execute(
        "UPDATE gstjobs.jobs SET scheduled_since = now() - interval '2 hours' WHERE name = 'sla-check'"
    )
    # a failed run, and a run whose backend is gone
    conn.execute(
        "INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, finished_at, error, backend_pid)"
        " VALUES ('deadline-alerts', 'cron', now(), 'failed', now() - interval '1 hour', now(), 'division by zero', 1)"
    )
    conn.execute(
        "INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, backend_pid)"
        " VALUES ('analytics-snapshot', 'cron', now(), 'running', now() - interval '3 hours', 999999)"
    )
    # a run stuck for two hours in a live backend, still in the statement that runs it
    conn.execute(
        "INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, backend_pid,"
        " backend_start, query_start)"
        " VALUES ('purge-history', 'manual', now(), 'running', now() - interval '2 hours', %s, %s, %s)",
        busy_session,
    )
    # an outbox backlog and a dead letter
    add_notification(conn, "k1", "pending", next_attempt_at=datetime.now(UTC) - timedelta(hours=1))
    add_notification(conn, "k2", "dead", attempts=8)

    healthy, problems, details = health(conn)
    assert not healthy
    assert sorted(problems) == sorted(
        [
            ("missed-ticks", "sla-check"),
            ("failed-runs", "deadline-alerts"),
            ("failed-runs", "analytics-snapshot"),  # the crashed run
            ("stuck-run", problems[[c for c, _ in problems].index("stuck-run")][1]),
            ("outbox-backlog", "notifications"),
            ("dead-letters", "notifications"),
        ]
    )
    missed = next(p for p in details if p["code"] == "missed-ticks")
    assert "it is paused" in missed["message"] and "gstjobs resume sla-check" in missed["advice"]
    ran = int(missed["message"].split(" ran ")[1].split(" of the ")[0])
    expected = int(missed["message"].split(" of the ")[1].split(" times")[0])
    assert ran == 0 and 115 <= expected <= 120
    crashed = conn.execute("SELECT status FROM gstjobs.runs WHERE backend_pid = 999999").fetchone()
    assert crashed == ("crashed",)

    alerts = notifications(conn, "health-alert")
    assert len(alerts) == 6 and {a["recipient"] for a in alerts} == {OPS}
    assert all(a["tenant_id"] is None for a in alerts)
    assert any("division by zero" in a["body"] for a in alerts)

    # the same problems next time: no new alert; a new problem: one
    health(conn)
    assert len(notifications(conn, "health-alert")) == 6
    add_notification(conn, "k3", "dead", attempts=8, tenant_id=2)
    conn.execute("UPDATE cron.job SET active = true WHERE jobname = 'sla-check'")
    conn.execute("UPDATE gstjobs.jobs SET scheduled_since = now() WHERE name = 'sla-check'")
    conn.execute("UPDATE cron.job SET active = false WHERE jobname = 'heartbeat'")
    conn.execute(
        "UPDATE gstjobs.jobs SET scheduled_since = now() - interval '10 minutes' WHERE name = 'heartbeat'"
    )
    _, problems, _ = health(conn)
    assert ("missed-ticks", "heartbeat") in problems and (
        "missed-ticks",
        "sla-check",
    ) not in problems
    assert len(notifications(conn, "health-alert")) == 7
    # resolved, then back: alerted again
    conn.execute("UPDATE cron.job SET active = true WHERE jobname = 'heartbeat'")
    conn.execute("UPDATE gstjobs.jobs SET scheduled_since = now() WHERE name = 'heartbeat'")
    assert ("missed-ticks", "heartbeat") not in health(conn)[1]
    conn.execute("UPDATE cron.job SET active = false WHERE jobname = 'heartbeat'")
    conn.execute(
        "UPDATE gstjobs.jobs SET scheduled_since = now() - interval '10 minutes' WHERE name = 'heartbeat'"
    )
    assert ("missed-ticks", "heartbeat") in health(conn)[1]
    assert len(notifications(conn, "health-alert")) == 8


def add_ticks(
    conn: psycopg.Connection[Any],
    job: str,
    minutes_ago: Iterable[int],
    status: str = "succeeded",
    message: str | None = None,
) -> list[tuple[int, int, datetime]]:
    """pg_cron's record of runs of a job started so many minutes ago: (jobid, runid, start)."""
    return conn.execute(
        "INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status,"
        " return_message, start_time, end_time)"
        " SELECT j.jobid, 1, current_database(), j.username, j.command, %s, %s, at, at"
        " FROM cron.job AS j, unnest(%s::integer[]) AS m,"
        " LATERAL (SELECT now() - m * interval '1 minute' AS at) AS t"
        " WHERE j.jobname = %s RETURNING jobid, runid, start_time",
        (status, message, list(minutes_ago), job),
    ).fetchall()


def test_ticks_and_failures_are_counted_per_job(
    watched: psycopg.Connection[Any],
) -> None:
    """pg_cron's runs of each job, read in one pass over cron.job_run_details: only those since
    the job was scheduled (at most 24 h back) count against what its schedule called for; its
    failures are the ledger's and those pg_cron alone saw."""
    conn = watched
    since = {"sla-check": timedelta(hours=2), "heartbeat": timedelta(minutes=30)}
    for job, back in since.items():
        conn.execute(
            "UPDATE gstjobs.jobs SET scheduled_since = now() - %s WHERE name = %s", (back, job)
        )
    # sla-check (every minute): 50 runs in its two hours, 7 more before it was scheduled;
    # heartbeat (every minute): 12 runs in its half hour
    add_ticks(conn, "sla-check", range(100, 50, -1))
    add_ticks(conn, "sla-check", range(150, 143, -1))
    add_ticks(conn, "heartbeat", range(20, 8, -1))
    # failures: a run pg_cron could not start (no ledger row), and a ledger failure pg_cron
    # also saw, told in pg_cron's words
    add_ticks(
        conn,
        "sla-check",
        [5],
        "failed",
        "could not start background process; more details may be available in the server log",
    )
    [(jobid, runid, started)] = add_ticks(conn, "heartbeat", [7], "failed", "server restarted")
    conn.execute(
        "INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, finished_at, error,"
        " cron_jobid, cron_runid) VALUES ('heartbeat', 'cron', %s, 'crashed', %s, now(),"
        " 'the backend ended', %s, %s)",
        (started, started, jobid, runid),
    )
    _, _, details = health(conn)
    failed = {p["subject"]: p["message"] for p in details if p["code"] == "failed-runs"}
    assert failed == {
        "sla-check": "sla-check failed 1 time(s) in 24 h; last: could not start background"
        " process; more details may be available in the server log",
        "heartbeat": "heartbeat failed 1 time(s) in 24 h; last: server restarted",
    }
    ran = {
        p["subject"]: p["message"].split(" ran ")[1].split(" times")[0]
        for p in details
        if p["code"] == "missed-ticks"
    }
    # the failed runs were started too: 51 and 13
    assert ran["sla-check"].startswith("51 of the ") and int(ran["sla-check"][10:]) >= 115
    assert ran["heartbeat"].startswith("13 of the ") and int(ran["heartbeat"][10:]) >= 26
    # counted since the job was scheduled, said in UTC to the minute
    scheduled = conn.execute(
        "SELECT scheduled_since FROM gstjobs.jobs WHERE name = 'heartbeat'"
    ).fetchone()
    assert scheduled is not None
    missed = next(
        p["message"] for p in details if p["subject"] == "heartbeat" and p["code"] == "missed-ticks"
    )
    assert f"since {scheduled[0].astimezone(UTC):%Y-%m-%d %H:%M} UTC: " in missed
    report = conn.execute(
        "SELECT report FROM gstjobs.health_reports ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert report is not None
    counted = {j["job"]: j.get("ticks") for j in report[0]["jobs"]}
    assert counted["sla-check"] == 51 and counted["heartbeat"] == 13
    # a job with no run at all in its window is counted as 0, not left out
    assert counted["dispatch-notifications"] == 0


def test_a_run_much_slower_than_its_median_is_reported(watched: psycopg.Connection[Any]) -> None:
    """The last successful run against the median of the 20 before it; dry runs, skipped and
    failed runs, and older runs do not count."""
    conn = watched

    def add_run(
        job: str, hours_ago: float, seconds: float, status: str = "succeeded", dry: bool = False
    ) -> None:
        conn.execute(
            "INSERT INTO gstjobs.runs (job, trigger, as_of, status, dry_run, started_at, finished_at)"
            " SELECT %s, 'cron', at, %s, %s, at, at + %s * interval '1 second'"
            " FROM (SELECT now() - %s * interval '1 hour' AS at) AS t",
            (job, status, dry, seconds, hours_ago),
        )

    # dispatch-notifications lasts as long as the outbox needs: a busy morning is not slow
    for job, last in (
        ("hearing-reminders", 30.0),
        ("deadline-alerts", 5.0),
        ("dispatch-notifications", 45.0),
    ):
        add_run(job, 200, 1000.0)  # older than the 21 newest: not in the median
        for hour in range(40, 20, -1):
            add_run(job, hour, 2.0)
        add_run(job, 3, last)
        # newer, and not counted: a dry run, a skipped run, a failed run
        add_run(job, 2, 500.0, dry=True)
        add_run(job, 1.5, 0.0, status="skipped")
        add_run(job, 1, 400.0, status="failed")
    _, _, details = health(conn)
    slow = {p["subject"]: p["message"] for p in details if p["code"] == "slow-run"}
    # 30 s is more than 3 times the median 2 s; 5 s is not
    assert slow == {"hearing-reminders": "hearing-reminders took 30.0 s, its median is 2.0 s"}


def test_outbox_counts_stop_at_the_cap(watched: psycopg.Connection[Any]) -> None:
    """A backed-up outbox is counted up to 10,000 (not read whole); a small one exactly."""
    watched.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body,"
        " dedupe_key, next_attempt_at) SELECT 1, 'sla-breach', 'email', 'a@b.in', 's', 'b',"
        " 'due:' || g, now() - interval '1 hour' FROM generate_series(1, 10001) AS g"
    )
    for key in ("d1", "d2"):
        add_notification(watched, key, "dead", attempts=8)
    _, _, details = health(watched)
    messages = {p["code"]: p["message"] for p in details}
    assert messages["outbox-backlog"].startswith("more than 10000 notification(s) due for more")
    assert messages["dead-letters"] == "2 notification(s) gave up after their last attempt"
    # one under the cap is counted exactly
    watched.execute("DELETE FROM gstjobs.notifications WHERE dedupe_key = 'due:1'")
    _, _, details = health(watched)
    backlog = next(p for p in details if p["code"] == "outbox-backlog")
    assert backlog["message"].startswith("10000 notification(s) due for more than")


def test_missed_slots_are_found_without_reading_every_slot_kept(
    watched: psycopg.Connection[Any],
) -> None:
    """Months of slots of many firms, all done but one missed: health-check reports the missed
    one, and its look for them goes through the partial index of missed slots, not a read of
    every slot kept (a daily seq scan that grew with firms x days: 2.7 million rows at XL)."""
    now = datetime.now(UTC)
    watched.execute(
        "INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at)"
        " SELECT 'hearing-reminders', 1, d::date, 'done', d + interval '2 hours 30 minutes'"
        " FROM generate_series(%s::date - 2000, %s::date - 2, interval '1 day') AS d",
        (now, now),
    )
    watched.execute(
        "INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at)"
        " SELECT 'deadline-alerts', t, d::date, 'done', d + interval '3 hours 30 minutes'"
        " FROM generate_series(1, 2) AS t,"
        "  generate_series(%s::date - 20000, %s::date - 2, interval '1 day') AS d",
        (now, now),
    )
    watched.execute(
        "INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at)"
        " VALUES ('deadline-alerts', 2, %s::date - 1, 'missed', %s - interval '20 hours')",
        (now, now),
    )
    watched.execute("ANALYZE gstjobs.slots")
    _, problems, _ = health(watched)
    assert ("missed-slots", "deadline-alerts") in problems
    plan = "\n".join(
        row[0]
        for row in watched.execute(
            "EXPLAIN "
            + load_plpy_module("health_check").MISSED_SLOTS.replace("$1", "%s").replace("$2", "%s"),
            (now - timedelta(days=1), now),
        )
    )
    assert "slots_missed_idx" in plan and "Seq Scan" not in plan, plan


def test_health_check_slot_is_seven_in_the_operations_zone(
    watched: psycopg.Connection[Any],
) -> None:
    # pg_cron polls health-check every 15 minutes; its report is due at 07:00 in ops.timezone
    conn = watched
    conn.execute(
        "INSERT INTO gstjobs.settings (key, value) VALUES ('ops.timezone', 'Europe/London')"
    )
    for as_of, expected in [
        (datetime(2026, 11, 20, 6, 55, tzinfo=UTC), []),  # 06:55 GMT
        (datetime(2026, 11, 20, 7, 5, tzinfo=UTC), [("2026-11-20", "done")]),
        (datetime(2026, 7, 20, 6, 5, tzinfo=UTC), [("2026-07-20", "done")]),  # 07:05 BST
    ]:
        slots = conn.execute(
            "SELECT local_date::text, status FROM gstjobs.due_slots('health-check', %s, NULL)",
            (as_of,),
        ).fetchall()
        assert slots == expected, as_of


def add_run(
    conn: psycopg.Connection[Any],
    days_ago: int,
    status: str = "succeeded",
    session: tuple[int, datetime, datetime] | None = None,
) -> None:
    """A heartbeat run; a running one belongs to session, a live statement (live_statement),
    so that it is not taken for crashed."""
    pid, backend_start, query_start = session or (0, None, None)
    conn.execute(
        "INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, finished_at,"
        " backend_pid, backend_start, query_start)"
        " VALUES ('heartbeat', 'cron', now(), %s, now() - %s * interval '1 day',"
        " CASE WHEN %s = 'running' THEN NULL ELSE now() END, %s, %s, %s)",
        (status, days_ago, status, pid, backend_start, query_start),
    )


def test_purge_keeps_what_it_must_and_works_in_batches(
    watched: psycopg.Connection[Any], busy_session: tuple[int, datetime, datetime]
) -> None:
    conn = watched
    conn.execute("INSERT INTO gstjobs.settings (key, value) VALUES ('purge.batch_size', '2')")
    for _ in range(5):
        add_run(conn, 91)
    add_run(conn, 89)
    add_run(conn, 200, "running", busy_session)
    old = datetime.now(UTC) - timedelta(days=100)
    for i, status in enumerate(["sent", "sent", "sent", "pending", "failed", "dead"]):
        add_notification(
            conn,
            f"n{i}",
            status,
            created_at=old,
            next_attempt_at=old,
            sent_at=old if status == "sent" else None,
        )
    add_notification(conn, "recent", "sent", sent_at=datetime.now(UTC) - timedelta(days=10))
    # a digest's items go as they get as old (their words are in the digest email); a
    # suppressed message, never sent, stays
    for key, status, age in (("d-old", "digested", 100), ("d-new", "digested", 10),
                             ("s-old", "suppressed", 100)):  # fmt: skip
        at_ = datetime.now(UTC) - timedelta(days=age)
        extra = {"digest_id": 1} if status == "digested" else {"suppressed_at": at_}
        add_notification(conn, key, status, channel="digest" if status == "digested" else "email",
                         created_at=at_, **extra)  # fmt: skip
    conn.execute(
        "INSERT INTO gstjobs.audit_log (action, at) VALUES ('pause', now() - interval '1000 days'),"
        " ('pause', now() - interval '3000 days')"
    )
    heartbeat = conn.execute("SELECT jobid FROM cron.job WHERE jobname = 'heartbeat'").fetchone()
    assert heartbeat is not None
    conn.execute(
        "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status,"
        " return_message, start_time, end_time) SELECT %s, 1000 + g, 1, 'x', 'gstjobs_runner', 'CALL',"
        " 'succeeded', 'CALL', now() - g * interval '30 days', now() - g * interval '30 days'"
        " FROM generate_series(1, 4) AS g",
        (heartbeat[0],),
    )

    counts = run(conn, "purge-history", datetime.now(UTC))
    assert counts["runs"] == 5 and counts["notifications"] == 3 and counts["audit_log"] == 1
    assert counts["cron_runs"] == 2  # 120 and 90... days: those older than 90
    assert counts["digest_items"] == 1
    left = {r[0] for r in conn.execute("SELECT dedupe_key FROM gstjobs.notifications")}
    assert left == {"n3", "n4", "n5", "recent", "d-new", "s-old"}
    assert conn.execute(
        "SELECT count(*) FROM gstjobs.audit_log WHERE action = 'pause'"
    ).fetchone() == (1,)
    statuses = sorted(
        r[0] for r in conn.execute("SELECT status FROM gstjobs.runs WHERE job = 'heartbeat'")
    )
    assert statuses == ["running", "succeeded"]
    batches = conn.execute(
        "SELECT count(*) FROM gstjobs.runs WHERE job = 'purge-history'"
    ).fetchone()
    assert batches == (1,)  # one run, several batches committed inside it


# (table, its time column, the setting that keeps it, a row of it as (columns, values) with
# %(at)s for the time): every table purge-history purges
PURGED = [
    (
        "gstjobs.runs",
        "started_at",
        "retention.run_history_days",
        "(job, trigger, as_of, status, started_at, finished_at)",
        "('heartbeat', 'cron', %(at)s, 'succeeded', %(at)s, %(at)s)",
    ),
    (
        "cron.job_run_details",
        "start_time",
        "retention.run_history_days",
        "(jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)",
        "((SELECT jobid FROM cron.job WHERE jobname = 'heartbeat'), nextval('cron.runid_seq'), 1, 'x',"
        " 'gstjobs_runner', 'CALL', 'succeeded', 'CALL', %(at)s, %(at)s)",
    ),
    (
        "gstjobs.notifications",
        "sent_at",
        "retention.notifications_days",
        "(tenant_id, kind, channel, recipient, subject, body, status, dedupe_key, sent_at)",
        "(1, 'sla-breach', 'email', 'a@b.in', 's', 'b', 'sent', md5(random()::text), %(at)s)",
    ),
    (
        "gstjobs.slots",
        "processed_at",
        "retention.run_history_days",
        "(job, tenant_id, local_date, status, due_at, processed_at)",
        "('hearing-reminders', 1, %(at)s::date - (SELECT count(*) FROM gstjobs.slots)::integer,"
        " 'done', %(at)s, %(at)s)",
    ),
    (
        "gstjobs.health_reports",
        "created_at",
        "retention.run_history_days",
        "(healthy, created_at)",
        "(true, %(at)s)",
    ),
    ("gstjobs.audit_log", "at", "retention.audit_days", "(action, at)", "('pause', %(at)s)"),
]
RETENTION = {
    "retention.run_history_days": 10,
    "retention.notifications_days": 20,
    "retention.audit_days": 400,
}


def test_purge_keeps_what_is_one_second_inside_every_limit_and_takes_one_second_past(
    watched: psycopg.Connection[Any],
) -> None:
    """Retention set away from its defaults; for each purged table, a row a second inside the
    limit (kept) and a second past it (purged), counted from the run's as_of."""
    conn = watched
    for key, days in RETENTION.items():
        conn.execute("SELECT gstjobs.set_setting(%s, %s)", (key, str(days)))
    as_of = conn.execute("SELECT date_trunc('second', now()) - interval '1 minute'").fetchone()
    assert as_of is not None
    for table, _, setting, columns, values in PURGED:
        for offset in (1, -1):  # a second inside the limit, a second past it
            at = as_of[0] - timedelta(days=RETENTION[setting], seconds=-offset)
            conn.execute(f"INSERT INTO {table} {columns} VALUES {values}", {"at": at})
    marked = {
        table: conn.execute(
            f"SELECT array_agg({column} ORDER BY {column}) FROM {table}"
            f" WHERE {column} < %s - interval '5 days'",
            (as_of[0],),
        ).fetchone()[0]  # type: ignore[index]
        for table, column, *_ in PURGED
    }
    run(conn, "purge-history", as_of[0])
    for table, column, setting, *_ in PURGED:
        limit = as_of[0] - timedelta(days=RETENTION[setting])
        inside, past = limit + timedelta(seconds=1), limit - timedelta(seconds=1)
        assert sorted(marked[table]) == [past, inside], table
        left = conn.execute(
            f"SELECT array_agg({column}) FROM {table} WHERE {column} = ANY (%s)",
            (marked[table],),
        ).fetchone()
        assert left == ([inside],), table
