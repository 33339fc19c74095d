"""The server stopped dead (pg_ctl stop -m immediate) while pg_cron runs a job, then started."""

import time
from datetime import timedelta

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.conftest import CRON_DB, cluster, wait_until
from tests.integration.conftest import FIRM

SLOW_JOB = """
CREATE SCHEMA IF NOT EXISTS test_crash;
CREATE OR REPLACE FUNCTION test_crash.slow(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE sql SECURITY DEFINER
    BEGIN ATOMIC
        SELECT pg_sleep(120);
        SELECT '{}'::jsonb;
    END;
-- a job's body is run by gstjobs.run_batch as the owner
GRANT USAGE ON SCHEMA test_crash TO gstjobs_owner;
GRANT EXECUTE ON FUNCTION test_crash.slow(bigint, timestamptz, bigint, boolean) TO gstjobs_owner;
INSERT INTO gstjobs.jobs (name, description, default_schedule, body)
VALUES ('test-crash', 'sleeps through a crash', '* * * * *',
        'test_crash.slow(bigint, timestamptz, bigint, boolean)')
ON CONFLICT (name) DO NOTHING;
SELECT cron.schedule_in_database('test-crash', '* * * * *', 'CALL gstjobs.run_job(''test-crash'')',
                                 current_database(), 'gstjobs_runner');
"""

CLEANUP = """
DELETE FROM gstjobs.runs WHERE job = 'test-crash';
DELETE FROM gstjobs.jobs WHERE name = 'test-crash';
DROP SCHEMA IF EXISTS test_crash CASCADE;
"""


@pytest.mark.slow
def test_a_crash_under_a_running_job_shows_in_history_and_health(cron_db: str) -> None:
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute(SLOW_JOB.encode())
    try:
        # pg_cron starts it at the next minute; the ledger shows it running
        wait_until(
            cron_db,
            "SELECT id FROM gstjobs.runs WHERE job = 'test-crash' AND status = 'running'"
            " AND trigger = 'cron'",
            seconds=75,
        )
        cluster("crash", CRON_DB)
        cluster("start", CRON_DB)
        detail = wait_until(
            cron_db,
            "SELECT status, return_message FROM cron.job_run_details AS d"
            " JOIN cron.job AS j USING (jobid) WHERE j.jobname = 'test-crash'"
            " AND d.status = 'failed'",
            seconds=30,
        )
        assert detail == ("failed", "server restarted")

        history = CliRunner().invoke(
            cli, ["--dsn", cron_db, "history", "test-crash", "--format", "json"]
        )
        assert history.exit_code == 0, history.output
        assert '"error": "server restarted"' in history.stdout

        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
        health = CliRunner().invoke(cli, ["--dsn", cron_db, "health", "--run", "--format", "json"])
        assert health.exit_code == 1
        assert '"subject": "test-crash"' in health.stdout and "server restarted" in health.stdout
        with psycopg.connect(cron_db, autocommit=True) as conn:
            ledger = conn.execute(
                "SELECT status, error FROM gstjobs.runs WHERE job = 'test-crash' AND trigger = 'cron'"
            ).fetchone()
        assert (
            ledger is not None
            and ledger[0] == "crashed"
            and "ended, or its statement did, before the run finished" in ledger[1]
        )
    finally:
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'test-crash'")
            # a later tick may be sleeping in the job by now
            conn.execute(
                "SELECT pg_terminate_backend(backend_pid) FROM gstjobs.runs"
                " WHERE job = 'test-crash' AND status = 'running'"
            )
            time.sleep(0.5)
            conn.execute(CLEANUP.encode())
            conn.execute("DELETE FROM gstjobs.health_reports")
            conn.execute("DELETE FROM gstjobs.notifications")


@pytest.mark.slow
def test_a_local_slot_passed_while_the_server_was_down_is_caught_up_once(cron_db: str) -> None:
    """A real outage across a firm's local slot: pg_cron never runs the ticks it missed, the
    toolkit's slot ledger does the slot late, once."""
    # the firm's zone: one where the slot, two minutes from now, is well inside a local day,
    # whatever the hour (no skip near midnight)
    with psycopg.connect(cron_db, autocommit=True) as conn:
        zone, now_local = conn.execute(
            "SELECT zone, now() AT TIME ZONE zone FROM unnest(ARRAY['Asia/Kolkata',"
            " 'Europe/London', 'America/New_York']) AS zone"
            " WHERE extract(hour FROM now() AT TIME ZONE zone) BETWEEN 2 AND 21 LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        slot = (now_local + timedelta(minutes=2)).replace(second=0, microsecond=0)
        assert slot.date() == now_local.date()
    # One transaction: a pg_cron tick meanwhile sees no firm, or the firm with its slot moved
    # to two minutes from now, never the firm with today's 08:00 slot due (it would take it)
    with psycopg.connect(cron_db) as conn:
        # slots an earlier test's firms left in this shared database
        conn.execute("DELETE FROM gstjobs.slots WHERE job = 'hearing-reminders'")
        conn.execute(FIRM.encode())
        conn.execute("UPDATE litigation.tenants SET timezone = %s WHERE id = 1", (zone,))
        conn.execute(
            "INSERT INTO litigation.hearings (tenant_id, case_id, starts_at, forum)"
            " VALUES (1, 1, ((%s::date + 1) + time '10:30') AT TIME ZONE %s,"
            " 'Appellate Authority')",
            (slot.date(), zone),
        )
        # the slot comes two minutes from now; yesterday's was done; pg_cron polls every minute
        conn.execute(
            "UPDATE gstjobs.jobs SET local_time = %s WHERE name = 'hearing-reminders'",
            (slot.time(),),
        )
        conn.execute(
            "INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at)"
            " VALUES ('hearing-reminders', 1, %s::date - 1, 'done', now() - interval '1 day')",
            (slot.date(),),
        )
        conn.execute("SELECT gstjobs.set_setting('slots.late_after_minutes', '1', NULL)")
        conn.execute(
            "UPDATE cron.job SET schedule = '* * * * *' WHERE jobname = 'hearing-reminders'"
        )
    try:
        cluster("crash", CRON_DB)
        # down across the slot
        time.sleep(max(0.0, (slot - now_local).total_seconds()) + 20)
        cluster("start", CRON_DB)
        taken = wait_until(
            cron_db,
            "SELECT status, run_id FROM gstjobs.slots WHERE job = 'hearing-reminders'"
            f" AND tenant_id = 1 AND local_date = '{slot.date()}'",
            seconds=90,
        )
        assert taken[0] == "late"
        with psycopg.connect(cron_db, autocommit=True) as conn:
            trigger = conn.execute(
                "SELECT trigger FROM gstjobs.runs WHERE id = %s", (taken[1],)
            ).fetchone()
            assert trigger == ("cron",)
            # once: another run finds nothing to do, and the reminder exists once per channel
            again = conn.execute("CALL gstjobs.run_job('hearing-reminders')").fetchone()
            counts = conn.execute(
                "SELECT counts FROM gstjobs.runs WHERE id = %s",
                (again[0],),  # type: ignore[index]
            ).fetchone()
            assert counts is not None and counts[0]["slots"] == 0
            reminders = conn.execute(
                "SELECT channel, count(*) FROM gstjobs.notifications"
                " WHERE kind = 'hearing-reminder' GROUP BY 1 ORDER BY 1"
            ).fetchall()
            assert reminders == [("email", 1), ("whatsapp", 1)]
    finally:
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute(
                "UPDATE cron.job SET schedule = '*/15 * * * *' WHERE jobname = 'hearing-reminders'"
            )
            conn.execute(
                "UPDATE gstjobs.jobs SET local_time = '08:00' WHERE name = 'hearing-reminders'"
            )
            conn.execute("DELETE FROM gstjobs.settings WHERE key = 'slots.late_after_minutes'")
            conn.execute("DELETE FROM gstjobs.slots")
            conn.execute("DELETE FROM gstjobs.notifications")
            conn.execute("TRUNCATE litigation.tenants CASCADE")
