"""The job runner: ledger, locks, failures, crashes, and pg_cron running it by itself."""

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors

from tests.conftest import JOBS
from tests.integration.conftest import FIRM

TEST_JOBS = """
CREATE SCHEMA test_jobs;
CREATE TABLE test_jobs.effects (run_id bigint);
CREATE FUNCTION test_jobs.slow(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE sql
    BEGIN ATOMIC
        INSERT INTO test_jobs.effects VALUES (run_id);
        SELECT pg_sleep(30);
        SELECT '{"slept": 1}'::jsonb;
    END;
CREATE FUNCTION test_jobs.broken(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE sql
    BEGIN ATOMIC
        INSERT INTO test_jobs.effects VALUES (run_id);
        SELECT (1 / 0)::text::jsonb;
    END;
CREATE FUNCTION test_jobs.effect(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE sql
    BEGIN ATOMIC
        INSERT INTO test_jobs.effects VALUES (run_id);
        SELECT jsonb_build_object('effects', 1);
    END;
CREATE FUNCTION test_jobs.refusing(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'a task of firm 7 has no case'
        USING DETAIL = 'task 42 points at case 9, which was deleted',
              HINT = 'give task 42 a case, or close it';
END
$$;
GRANT USAGE ON SCHEMA test_jobs TO PUBLIC;
GRANT INSERT ON test_jobs.effects TO PUBLIC;
INSERT INTO gstjobs.jobs (name, description, default_schedule, body) VALUES
    ('test-refusing', 'refuses', '* * * * *', 'test_jobs.refusing(bigint, timestamptz, bigint, boolean)'),
    ('test-slow', 'sleeps', '* * * * *', 'test_jobs.slow(bigint, timestamptz, bigint, boolean)'),
    ('test-broken', 'fails', '* * * * *', 'test_jobs.broken(bigint, timestamptz, bigint, boolean)'),
    ('test-effect', 'writes', '* * * * *', 'test_jobs.effect(bigint, timestamptz, bigint, boolean)');
"""


@pytest.fixture
def jobs_db(conn: psycopg.Connection[tuple]) -> psycopg.Connection[tuple]:
    """A migrated database with three extra jobs registered to exercise the runner."""
    conn.execute(TEST_JOBS.encode())
    return conn


def runs(conn: psycopg.Connection[tuple], job: str) -> list[tuple]:
    return conn.execute(
        "SELECT trigger, status, counts, error, dry_run FROM gstjobs.runs WHERE job = %s ORDER BY id",
        (job,),
    ).fetchall()


def operator_conn(dsn: str) -> psycopg.Connection[tuple]:
    connection = psycopg.connect(dsn, autocommit=True)
    connection.execute("SET ROLE gstjobs_operator")
    return connection


def test_manual_run_by_an_operator_is_recorded(db: str, conn: psycopg.Connection[tuple]) -> None:
    with operator_conn(db) as operator:
        operator.execute("CALL gstjobs.run_job('heartbeat', reason => 'checking the scheduler')")
        with pytest.raises(errors.InsufficientPrivilege):
            operator.execute("DELETE FROM gstjobs.runs")
        with pytest.raises(errors.InsufficientPrivilege):
            operator.execute("SELECT * FROM cron.job")
        history = operator.execute(
            "SELECT job, trigger, status, reason FROM gstjobs.run_history"
        ).fetchall()
    assert history == [("heartbeat", "manual", "succeeded", "checking the scheduler")]
    [(trigger, status, counts, error, dry_run)] = runs(conn, "heartbeat")
    assert (trigger, status, error, dry_run) == ("manual", "succeeded", None, False)
    assert "lag_ms" in counts


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        ("CALL gstjobs.run_job('sla')", errors.UndefinedObject, "unknown job 'sla'"),
        (
            "CALL gstjobs.run_job('heartbeat', as_of => now() + interval '1 hour')",
            errors.InvalidParameterValue,
            "is in the future",
        ),
        (
            "CALL gstjobs.run_job('heartbeat', tenant_id => 999999)",
            errors.InvalidParameterValue,
            "unknown tenant 999999",
        ),
        (
            "CALL gstjobs.run_job('heartbeat', reason => repeat('x', 1001))",
            errors.StringDataRightTruncation,
            "at most 1000",
        ),
        (
            "CALL gstjobs.run_job('x''); DROP TABLE gstjobs.runs; --')",
            errors.UndefinedObject,
            "unknown job",
        ),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    conn: psycopg.Connection[tuple], call: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        conn.execute(call)
    assert message in str(raised.value)
    assert conn.execute("SELECT count(*) FROM gstjobs.runs").fetchone() == (0,)


def test_unknown_job_names_the_jobs_there_are(conn: psycopg.Connection[tuple]) -> None:
    with pytest.raises(errors.UndefinedObject) as raised:
        conn.execute("CALL gstjobs.run_job('nope')")
    assert raised.value.diag.message_hint == "jobs are: " + ", ".join(JOBS)


def test_failed_body_is_recorded_and_leaves_no_effect(jobs_db: psycopg.Connection[tuple]) -> None:
    jobs_db.execute("CALL gstjobs.run_job('test-broken')")
    [(_, status, _, error, _)] = runs(jobs_db, "test-broken")
    assert status == "failed" and "division by zero" in error
    assert jobs_db.execute("SELECT count(*) FROM test_jobs.effects").fetchone() == (0,)


def test_a_failure_keeps_the_servers_detail_and_hint(jobs_db: psycopg.Connection[tuple]) -> None:
    """DETAIL and HINT as the real server raised them, through run_batch into the ledger and
    run_history, and on to the operator's screen."""
    jobs_db.execute("CALL gstjobs.run_job('test-refusing')")
    [(_, status, _, error, _)] = runs(jobs_db, "test-refusing")
    assert status == "failed" and error == (
        "a task of firm 7 has no case\n"
        "DETAIL: task 42 points at case 9, which was deleted\n"
        "HINT: give task 42 a case, or close it"
    )
    shown = jobs_db.execute(
        "SELECT error FROM gstjobs.run_history WHERE job = 'test-refusing'"
    ).fetchone()
    assert shown == (error,)


def test_a_refusal_reaches_the_caller_with_its_hint_through_both_steps(
    conn: psycopg.Connection[tuple],
) -> None:
    """start_run's error is raised again by run_begin and again by run_job: the caller gets
    the server's own SQLSTATE, message and hint. (PL/Python puts 'plpy.Error: ' before the
    message and its traceback in CONTEXT; the CLI shows the message and hint only.)"""
    with pytest.raises(errors.InvalidParameterValue) as raised:
        conn.execute("CALL gstjobs.run_job('sla-check', as_of => now() + interval '1 hour')")
    diag = raised.value.diag
    assert diag.message_primary is not None
    # once: each step that raised it again took off the prefix the step before had added
    assert diag.message_primary.startswith("plpy.Error: as_of ")
    assert diag.message_primary.endswith(" is in the future")
    hint = "a job replays a moment that has passed; leave as_of out to mean now"
    assert diag.message_hint == hint


def test_dry_run_leaves_no_effect(jobs_db: psycopg.Connection[tuple]) -> None:
    jobs_db.execute("CALL gstjobs.run_job('test-effect', dry_run => true)")
    assert runs(jobs_db, "test-effect") == [
        ("manual", "succeeded", {"effects": 1, "would_notify": []}, None, True)
    ]
    assert jobs_db.execute("SELECT count(*) FROM test_jobs.effects").fetchone() == (0,)
    jobs_db.execute("CALL gstjobs.run_job('test-effect')")
    assert jobs_db.execute("SELECT count(*) FROM test_jobs.effects").fetchone() == (1,)


def wait_for(conn: psycopg.Connection[tuple], query: str, seconds: float) -> tuple:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()
        if row is not None and all(value is not None for value in row):
            return row
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds}s: {query}")


def test_concurrent_run_is_skipped_and_crashed_run_is_found(
    db: str, jobs_db: psycopg.Connection[tuple]
) -> None:
    slow = psycopg.connect(db, autocommit=True)
    slow_pid = slow.info.backend_pid
    failure: list[BaseException] = []

    def run_slow() -> None:
        try:
            slow.execute("CALL gstjobs.run_job('test-slow')")
        except psycopg.Error as error:  # terminated below, as intended
            failure.append(error)

    thread = threading.Thread(target=run_slow)
    thread.start()
    wait_for(
        jobs_db, "SELECT id FROM gstjobs.runs WHERE job = 'test-slow' AND status = 'running'", 10
    )

    # A second run while the first holds the job's lock ends at once, recorded, no effect.
    with operator_conn(db) as operator:
        started = time.monotonic()
        operator.execute("CALL gstjobs.run_job('test-slow')")
        assert time.monotonic() - started < 5
    assert [r[1] for r in runs(jobs_db, "test-slow")] == ["running", "skipped"]

    # The running backend dies: its effects roll back, the next run marks it crashed.
    jobs_db.execute("SELECT pg_terminate_backend(%s)", (slow_pid,))
    thread.join(10)
    slow.close()
    assert failure, "the slow run should have been terminated"
    jobs_db.execute("CALL gstjobs.run_job('heartbeat')")
    statuses = jobs_db.execute(
        "SELECT status, error FROM gstjobs.runs WHERE job = 'test-slow' ORDER BY id"
    ).fetchall()
    assert statuses[0][0] == "crashed" and f"pid {slow_pid}" in statuses[0][1]
    assert statuses[1][0] == "skipped"
    assert jobs_db.execute("SELECT count(*) FROM test_jobs.effects").fetchone() == (0,)


def test_replay_of_a_past_moment_sees_the_world_as_it_was_then(
    conn: psycopg.Connection[tuple],
) -> None:
    """A task whose SLA ran out 12 hours ago: replayed a day back, sla-check finds nothing to
    do; replayed now, it finds the breach. The ledger keeps the moment each run replayed."""
    conn.execute(FIRM.encode())
    conn.execute(
        "INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, sla_due_at)"
        " VALUES (1, 1, 1, 'Reply to SCN', 3, now() - interval '12 hours')"
    )
    before = datetime.now(UTC) - timedelta(days=1)
    conn.execute("CALL gstjobs.run_job('sla-check', as_of => %s)", (before,))
    assert conn.execute("SELECT sla_breach_detected_at FROM litigation.tasks").fetchone() == (None,)
    assert conn.execute("SELECT count(*) FROM gstjobs.notifications").fetchone() == (0,)
    conn.execute("CALL gstjobs.run_job('sla-check')")
    detected = conn.execute("SELECT sla_breach_detected_at FROM litigation.tasks").fetchone()
    assert detected is not None and detected[0] is not None
    assert conn.execute("SELECT count(*) FROM gstjobs.notifications").fetchone() == (2,)
    replays = conn.execute(
        "SELECT as_of < now() - interval '23 hours' FROM gstjobs.runs ORDER BY id"
    ).fetchall()
    assert replays == [(True,), (False,)]


@pytest.mark.slow
def test_pg_cron_runs_the_jobs_by_themselves(cron_db: str) -> None:
    """The real path: pg_cron, as gstjobs_runner, within ~70 s; in both histories."""
    with psycopg.connect(cron_db, autocommit=True) as conn:
        since = conn.execute("SELECT now()").fetchone()
        assert since is not None
        for job in ("heartbeat", "sla-check"):
            row = wait_for(
                conn,
                f"""SELECT r.id, d.runid, d.status, d.username
                    FROM gstjobs.runs AS r
                    JOIN cron.job_run_details AS d ON d.runid = r.cron_runid
                    WHERE r.job = '{job}' AND r.trigger = 'cron' AND r.status = 'succeeded'
                      AND d.status = 'succeeded' AND r.started_at > '{since[0].isoformat()}'
                    ORDER BY r.id DESC LIMIT 1""",
                75,
            )
            assert row[3] == "gstjobs_runner"
            history = conn.execute(
                "SELECT job, trigger, status, cron_message FROM gstjobs.run_history WHERE run_id = %s",
                (row[0],),
            ).fetchone()
            assert history == (job, "cron", "succeeded", "CALL")
        runner = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'gstjobs_runner'"
        ).fetchone()
        assert runner == (False,)


def test_counts_of_a_runs_batches_are_added_up(conn: psycopg.Connection[tuple]) -> None:
    """Numbers are summed; anything else (a flag, a list) is the last batch's."""
    row = conn.execute(
        "SELECT gstjobs.add_counts(gstjobs.add_counts('{}',"
        """ '{"runs": 2, "healthy": true, "ratio": 0.5}'),"""
        """ '{"runs": 3, "due.email": 1, "healthy": false, "ratio": 0.25}')"""
    ).fetchone()
    assert row == ({"runs": 5, "healthy": False, "ratio": 0.75, "due.email": 1},)
