"""No role can stop a job: the guard against overlapping runs is the ledger's running rows,
which only the owner writes; no lock that guards a run can be taken by anyone else
(docs/SECURITY.md, "Attacks")."""

import threading
from typing import Any

import psycopg
import pytest

from tests.conftest import wait_until
from tests.security.conftest import Connect, refused


def run_status(conn: psycopg.Connection[Any], job: str) -> str:
    """Run job by hand, with a bound on how long it may wait; its ledger status."""
    conn.execute("SET statement_timeout = '20s'")
    run_id = conn.execute("CALL gstjobs.run_job(%s)", (job,)).fetchone()
    assert run_id is not None
    row = conn.execute("SELECT status FROM gstjobs.runs WHERE id = %s", run_id).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize("role", ["nobody", "app", "operator"])
def test_an_advisory_lock_on_a_jobs_old_key_blocks_nothing(
    firm: psycopg.Connection[Any], connect_as: Connect, role: str
) -> None:
    """The attack as reported: the key the advisory lock of 0003 used, held by any login."""
    attacker = connect_as(role)
    for job in ("sla-check", "heartbeat", "dispatch-notifications"):
        attacker.execute(
            "SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"gstjobs.job:{job}",)
        )
        attacker.execute(
            "SELECT pg_advisory_lock_shared(hashtextextended(%s, 0))", (f"gstjobs.job:{job}",)
        )
    for job in ("sla-check", "heartbeat", "dispatch-notifications"):
        assert run_status(firm, job) == "succeeded", job


LOCKS = [
    ("operator", "SELECT * FROM gstjobs.jobs FOR KEY SHARE", "42501"),
    ("operator", "SELECT * FROM gstjobs.jobs FOR SHARE", "42501"),
    ("operator", "SELECT * FROM gstjobs.jobs FOR NO KEY UPDATE", "42501"),
    ("operator", "LOCK TABLE gstjobs.jobs IN SHARE MODE", "42501"),
    ("operator", "LOCK TABLE gstjobs.runs IN ACCESS SHARE MODE", "42501"),
    ("operator", "SELECT * FROM gstjobs.run_history FOR UPDATE", "42501"),
    ("operator", "SELECT * FROM gstjobs.outbox FOR UPDATE", "42501"),
    ("app", "SELECT * FROM gstjobs.notifications FOR UPDATE", "42501"),
    ("app", "LOCK TABLE gstjobs.notifications IN EXCLUSIVE MODE", "42501"),
    ("app", "SELECT * FROM gstjobs.runs FOR KEY SHARE", "42501"),
    ("nobody", "LOCK TABLE gstjobs.jobs IN ACCESS SHARE MODE", "42501"),
    ("nobody", "SELECT * FROM gstjobs.settings FOR SHARE", "42501"),
]


@pytest.mark.parametrize(("role", "statement", "sqlstate"), LOCKS, ids=[s for _, s, _ in LOCKS])
def test_no_role_takes_a_lock_a_run_needs(
    connect_as: Connect, role: str, statement: str, sqlstate: str
) -> None:
    conn = connect_as(role)
    conn.execute("BEGIN")
    refused(conn, statement, sqlstate)
    conn.execute("ROLLBACK")


def test_a_session_that_keeps_a_run_open_in_a_transaction_block_holds_nothing(
    firm: psycopg.Connection[Any], connect_as: Connect
) -> None:
    """CALL run_job inside BEGIN cannot commit; the error ends the transaction's locks at
    once, though the session stays in its aborted transaction."""
    operator = connect_as("operator")
    operator.execute("BEGIN")
    with pytest.raises(psycopg.Error):
        operator.execute("CALL gstjobs.run_job('heartbeat')")
    assert run_status(firm, "heartbeat") == "succeeded"
    operator.execute("ROLLBACK")


def test_a_run_left_unfinished_by_a_live_session_does_not_hold_the_job(
    db: str, firm: psycopg.Connection[Any]
) -> None:
    """A running row whose session is alive but has moved on from the statement that ran it
    (a CALL that ended without finishing, by whatever fault) is over: the next run marks it
    crashed and runs."""
    leftover = psycopg.connect(db, autocommit=True)
    try:
        leftover.execute(
            "INSERT INTO gstjobs.runs (job, trigger, as_of, backend_start, query_start)"
            " SELECT 'heartbeat', 'manual', now(), a.backend_start, a.query_start"
            " FROM pg_stat_get_activity(pg_backend_pid()) AS a"
        )
        leftover.execute("SELECT 1")  # the session lives on, running something else
        assert run_status(firm, "heartbeat") == "succeeded"
        crashed = firm.execute(
            "SELECT status, error FROM gstjobs.runs WHERE backend_pid = %s",
            (leftover.info.backend_pid,),
        ).fetchone()
        assert crashed is not None and crashed[0] == "crashed"
        assert "ended, or its statement did, before the run finished" in crashed[1]
    finally:
        leftover.close()


def test_a_live_run_still_excludes_another(db: str, firm: psycopg.Connection[Any]) -> None:
    """The guard still guards: a run for firm 1 in progress (held inside its body) makes the
    next run for firm 1, or for all firms, skip; a run for firm 2 goes beside it."""
    firm.execute(
        "CREATE FUNCTION public.held(bigint, timestamptz, bigint, boolean) RETURNS jsonb"
        " LANGUAGE sql AS $$ SELECT pg_advisory_lock(4242) WHERE $3 = 1; SELECT '{}'::jsonb $$"
    )
    firm.execute(
        "INSERT INTO gstjobs.jobs (name, description, default_schedule, per_tenant, body)"
        " VALUES ('test-held', 'held', '* * * * *', true,"
        " 'public.held(bigint, timestamptz, bigint, boolean)')"
    )
    holder = psycopg.connect(db, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(4242)")

    def hold() -> None:
        with psycopg.connect(db, autocommit=True) as running:
            running.execute("CALL gstjobs.run_job('test-held', tenant_id => 1)")

    held = threading.Thread(target=hold)
    held.start()
    try:
        wait_until(db, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory'")
        with psycopg.connect(db, autocommit=True) as other:
            statuses = [
                other.execute(
                    "CALL gstjobs.run_job('test-held', tenant_id => %s)", (tenant,)
                ).fetchone()
                for tenant in (1, None, 2)
            ]
            assert [
                other.execute("SELECT status FROM gstjobs.runs WHERE id = %s", s).fetchone()
                for s in statuses
            ] == [("skipped",), ("skipped",), ("succeeded",)]
    finally:
        holder.close()
        held.join(30)
    # and the held run, released, finished
    assert firm.execute(
        "SELECT status FROM gstjobs.runs WHERE job = 'test-held' AND tenant_id = 1 ORDER BY id"
    ).fetchall() == [("succeeded",), ("skipped",)]
