"""The server stopped dead (pg_ctl stop -m immediate) while pg_cron runs a job, then started."""

import time
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.conftest import CRON_DB, cluster

SLOW_JOB = """
CREATE SCHEMA IF NOT EXISTS test_crash;
CREATE OR REPLACE FUNCTION test_crash.slow(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE sql SECURITY DEFINER
    BEGIN ATOMIC
        SELECT pg_sleep(120);
        SELECT '{}'::jsonb;
    END;
GRANT USAGE ON SCHEMA test_crash TO gstjobs_runner;
GRANT EXECUTE ON FUNCTION test_crash.slow(bigint, timestamptz, bigint, boolean) TO gstjobs_runner;
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


def wait(dsn: str, query: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute(query).fetchone()
                if row is not None:
                    return row
        except psycopg.OperationalError:
            pass  # the server is still starting
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds} s: {query}")


@pytest.mark.slow
def test_a_crash_under_a_running_job_shows_in_history_and_health(cron_db: str) -> None:
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute(SLOW_JOB.encode())
    try:
        # pg_cron starts it at the next minute; the ledger shows it running
        wait(
            cron_db,
            "SELECT id FROM gstjobs.runs WHERE job = 'test-crash' AND status = 'running'"
            " AND trigger = 'cron'",
            75,
        )
        cluster("crash", CRON_DB)
        cluster("start", CRON_DB)
        detail = wait(
            cron_db,
            "SELECT status, return_message FROM cron.job_run_details AS d"
            " JOIN cron.job AS j USING (jobid) WHERE j.jobname = 'test-crash'"
            " AND d.status = 'failed'",
            30,
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
            and "ended before the run finished" in ledger[1]
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
