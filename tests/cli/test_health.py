"""health and doctor through Click, as an operator, against the real server."""

import json
from typing import Any

import psycopg

from tests.cli.conftest import Invoke
from tests.conftest import OPERATOR


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, job, details, reason FROM gstjobs.audit_log ORDER BY id"
    ).fetchall()


def test_health_exit_code_follows_the_report(
    gstjobs: Invoke, conn: psycopg.Connection[Any]
) -> None:
    assert gstjobs("health").exit_code == 1  # no report yet
    conn.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
    healthy = gstjobs("health", "--run")
    assert healthy.exit_code == 0 and healthy.stdout.startswith("HEALTHY")
    conn.execute("UPDATE cron.job SET active = false WHERE jobname = 'heartbeat'")
    conn.execute(
        "UPDATE gstjobs.jobs SET scheduled_since = now() - interval '2 hours' WHERE name = 'heartbeat'"
    )
    unhealthy = gstjobs("health", "--run")
    assert unhealthy.exit_code == 1 and unhealthy.stdout.startswith("UNHEALTHY: 1 problem(s)")
    assert "what to do: `gstjobs resume heartbeat`" in unhealthy.stdout
    report = json.loads(gstjobs("health", "--format", "json").stdout)
    assert report["healthy"] is False and report["problems"][0]["code"] == "missed-ticks"


def test_doctor_explains_what_is_wrong_in_a_database_pg_cron_does_not_serve(
    gstjobs: Invoke, db: str
) -> None:
    result = gstjobs("doctor")
    assert result.exit_code == 1
    assert "FAIL  cron.database_name: gstjobs_cron" in result.stdout
    assert "fix: set cron.database_name" in result.stdout
    assert (
        "ok    pg_cron preloaded" in result.stdout and "ok    migrations at head" in result.stdout
    )
    checks = as_json_any(gstjobs("doctor", "--format", "json"))
    assert {c["name"] for c in checks} >= {
        "pg_cron launcher",
        "plpython3u",
        "runner not a superuser",
        "functions and views current",
        "job sla-check",
    }


def as_json_any(result: Any) -> Any:
    return json.loads(result.stdout)


def test_doctor_passes_where_pg_cron_runs(gstjobs: Invoke, cron_db: str) -> None:
    """Where pg_cron runs and an administrator has set where email goes (nothing is sent
    before: doctor says so until then)."""
    operator = cron_db.replace("postgres@", f"{OPERATOR}@")
    unset = gstjobs("doctor", dsn=operator)
    assert unset.exit_code == 1
    assert "FAIL  delivery possible: email: smtp.host is not set" in unset.stdout
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute("SELECT gstjobs.set_setting('smtp.host', '127.0.0.1')")
    try:
        result = gstjobs("doctor", dsn=operator)
    finally:
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("DELETE FROM gstjobs.settings WHERE key = 'smtp.host'")
    assert result.exit_code == 0, result.stdout
    assert "FAIL" not in result.stdout
