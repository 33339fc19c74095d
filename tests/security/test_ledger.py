"""One door into a run: nothing an operator (or pg_cron's runner) can call does anything that
CALL gstjobs.run_job would not; the audit log only grows (docs/SECURITY.md, "Attacks")."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.security.conftest import Connect, nothing_changes, refused

# a task not due for years: a body run with a forged as_of would "find" it breached
FUTURE_TASK = """
INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, due_at, sla_due_at)
VALUES (1, 1, 1, 'Reply to SCN', 3, now() + interval '5 years', now() + interval '5 years');
"""

STEPS = [
    ("SELECT gstjobs.run_begin('heartbeat', NULL, NULL, false, NULL, false)", "42501"),
    ("SELECT gstjobs.run_begin('sla-check', '2099-01-01', NULL, false, NULL, false)", "42501"),
    ("SELECT gstjobs.run_batch(1)", "42501"),
    ("SELECT gstjobs.job_sla_check(1, '2099-01-01', NULL, false)", "42501"),
    ("SELECT gstjobs.job_purge_history(1, '2200-01-01', NULL, false)", "42501"),
    ("SELECT gstjobs.job_dispatch_notifications(1, now(), NULL, false)", "42501"),
    ("SELECT gstjobs.start_run('heartbeat', NULL, NULL, false, NULL, false)", "42501"),
    ("SELECT gstjobs.run_guard(1, 'heartbeat')", "42501"),
    ("SELECT gstjobs.mark_crashed_runs()", "42501"),
    ("SELECT * FROM gstjobs.run_notifications(1)", "42501"),
    ("SELECT * FROM gstjobs.due_slots('hearing-reminders', now(), NULL)", "42501"),
]


@pytest.mark.parametrize("role", ["operator", "runner"])
@pytest.mark.parametrize(("statement", "sqlstate"), STEPS, ids=[s[7:40] for s, _ in STEPS])
def test_no_step_of_a_run_works_outside_run_job(
    db: str,
    firm: psycopg.Connection[Any],
    connect_as: Connect,
    role: str,
    statement: str,
    sqlstate: str,
) -> None:
    firm.execute(FUTURE_TASK)
    with nothing_changes(db):
        refused(connect_as(role), statement, sqlstate)


def test_the_steps_say_where_the_door_is(connect_as: Connect) -> None:
    refused(
        connect_as("operator"),
        "SELECT gstjobs.run_begin('heartbeat', NULL, NULL, false, NULL, false)",
        "42501",
        "a job runs only through CALL gstjobs.run_job(...)",
    )


def test_run_job_refuses_a_future_as_of_for_every_job(
    db: str, firm: psycopg.Connection[Any], connect_as: Connect
) -> None:
    firm.execute(FUTURE_TASK)
    operator = connect_as("operator")
    with nothing_changes(db):
        for job in ("sla-check", "purge-history"):
            refused(
                operator,
                f"CALL gstjobs.run_job('{job}', as_of => '2200-01-01')",
                "22023",
                "is in the future",
            )


def test_temporary_objects_of_the_caller_never_run_inside_run_job(
    firm: psycopg.Connection[Any], connect_as: Connect
) -> None:
    """Types named like the ones run_job uses, in the caller's pg_temp (searched first for
    types when search_path does not name it), with a check that would call the attacker's
    function while run_job's mark is set: run_job names every type by its schema."""
    operator = connect_as("operator")
    operator.execute("CREATE TEMPORARY TABLE caught (what text)")
    operator.execute(
        "CREATE FUNCTION pg_temp.spy(anyelement) RETURNS boolean LANGUAGE sql"
        " AS $$ INSERT INTO caught VALUES ('called'); SELECT true $$"
    )
    for name, base in (
        ("text", "pg_catalog.text"),
        ("int8", "pg_catalog.int8"),
        ("bool", "pg_catalog.bool"),
        ("timestamptz", "pg_catalog.timestamptz"),
        ("jsonb", "pg_catalog.jsonb"),
    ):
        operator.execute(f"CREATE DOMAIN pg_temp.{name} AS {base} CHECK (pg_temp.spy(VALUE))")
    operator.execute("SET search_path = public")
    run_id = operator.execute("CALL gstjobs.run_job('heartbeat')").fetchone()
    assert run_id is not None
    status = firm.execute("SELECT status FROM gstjobs.runs WHERE id = %s", run_id).fetchone()
    assert status == ("succeeded",)
    assert operator.execute("SELECT count(*) FROM caught").fetchone() == (0,)


def test_a_dry_run_changes_nothing_even_for_the_jobs_that_write(
    db: str, firm: psycopg.Connection[Any], connect_as: Connect
) -> None:
    firm.execute(
        "INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, sla_due_at)"
        " VALUES (1, 1, 1, 'Draft reply', 3, now() - interval '1 minute')"
    )
    operator = connect_as("operator")
    before = firm.execute("SELECT count(*) FROM gstjobs.notifications").fetchone()
    operator.execute("CALL gstjobs.run_job('sla-check', dry_run => true)")
    after = firm.execute(
        "SELECT (SELECT count(*) FROM gstjobs.notifications),"
        " (SELECT counts -> 'would_notify' FROM gstjobs.runs WHERE dry_run)"
    ).fetchone()
    assert before == (0,) and after is not None and after[0] == 0
    assert len(after[1]) == 2  # it would have notified the assignee by email and WhatsApp


AUDIT_ROW = "INSERT INTO gstjobs.audit_log (at, actor, action, reason) VALUES (%s, 'x', 'run', %s)"


def test_the_audit_log_only_grows_even_for_its_owner(conn: psycopg.Connection[Any]) -> None:
    conn.execute(AUDIT_ROW, (datetime.now(UTC) - timedelta(days=30), "a month old"))
    conn.execute("SET ROLE gstjobs_owner")
    try:
        before = conn.execute("SELECT * FROM gstjobs.audit_log").fetchall()
        for statement in (
            "UPDATE gstjobs.audit_log SET reason = 'rewritten'",
            "DELETE FROM gstjobs.audit_log",
            "TRUNCATE gstjobs.audit_log",
        ):
            refused(conn, statement, "42501", "the audit log is append-only")
        assert conn.execute("SELECT * FROM gstjobs.audit_log").fetchall() == before
    finally:
        conn.execute("RESET ROLE")


def test_purge_deletes_no_audit_row_younger_than_its_retention(
    conn: psycopg.Connection[Any], connect_as: Connect
) -> None:
    """Retention cannot go below a year, and purge, whenever it runs, keeps what is younger."""
    now = datetime.now(UTC)
    for days in (364, 366, 2556, 2558):
        conn.execute(AUDIT_ROW, (now - timedelta(days=days), f"{days} days"))
    refused(
        connect_as("admin"),
        "SELECT gstjobs.set_setting('retention.audit_days', '1')",
        "22023",
        "a whole number from 365 to 36500",
    )
    refused(
        connect_as("operator"),
        "SELECT gstjobs.set_setting('retention.audit_days', '400')",
        "42501",
        "members of gstjobs_admin only",
    )
    # a DBA writing the table directly is held to the same bounds
    refused(
        conn,
        "INSERT INTO gstjobs.settings (key, value) VALUES ('retention.audit_days', '1')",
        "22023",
        "a whole number from 365 to 36500",
    )
    connect_as("admin").execute("SELECT gstjobs.set_setting('retention.audit_days', '365')")
    connect_as("operator").execute("CALL gstjobs.run_job('purge-history')")
    kept = [r[0] for r in conn.execute("SELECT reason FROM gstjobs.audit_log WHERE actor = 'x'")]
    assert sorted(kept) == ["364 days"]
