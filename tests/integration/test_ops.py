"""The operations layer called directly, as the dashboard will call it: data in, data out, the
database's refusals raised as psycopg errors (the CLI's tests go through Click on top)."""

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from gstjobs import ops
from psycopg import errors
from psycopg.rows import dict_row

from tests.conftest import JOBS
from tests.integration.conftest import FIRM


@pytest.fixture
def operator_conn(operator: psycopg.Connection[Any]) -> ops.Connection:
    operator.row_factory = dict_row  # type: ignore[assignment]
    return operator  # type: ignore[return-value]


def test_jobs_runs_and_history(
    conn: psycopg.Connection[Any], operator_conn: ops.Connection
) -> None:
    conn.execute(FIRM.encode())
    overview = ops.job_overview(operator_conn, now=datetime(2026, 11, 20, 0, 0, 30, tzinfo=UTC))
    assert [row["job"] for row in overview] == JOBS
    sla = next(row for row in overview if row["job"] == "sla-check")
    assert sla["next_run"] == datetime(2026, 11, 20, 0, 1, tzinfo=UTC)
    report = ops.run_job(operator_conn, "heartbeat", reason="ops test")
    assert report["status"] == "succeeded" and "lag_ms" in report["counts"]
    dry = ops.run_job(operator_conn, "sla-check", dry_run=True)
    assert dry["would_notify"] == [] and dry["status"] == "succeeded"
    history = ops.run_history(operator_conn, "heartbeat")
    assert [row["run_id"] for row in history] == [report["run_id"]]
    with pytest.raises(errors.UndefinedObject) as unknown:
        ops.run_history(operator_conn, "nope")
    assert unknown.value.diag.message_hint == "jobs are: " + ", ".join(JOBS)


def test_pause_reschedule_settings_and_doctor(operator_conn: ops.Connection) -> None:
    assert ops.set_active(operator_conn, "purge-history", False, "ops test")["changed"] is True
    assert ops.reschedule(operator_conn, "purge-history", "30 20 * * *")["old_schedule"] == (
        "30 21 * * *"
    )
    with pytest.raises(errors.InvalidParameterValue):
        ops.reschedule(operator_conn, "purge-history", "0 0 31 2 *")
    assert ops.setting(operator_conn, "smtp.port")["changed_by"] == "admin"
    with pytest.raises(errors.UndefinedObject):
        ops.setting(operator_conn, "smtp.prot")
    [changed] = ops.change_settings(operator_conn, {"dispatch.run_seconds": "50"})
    assert changed == {"key": "dispatch.run_seconds", "old": "60", "value": "50"}
    with pytest.raises(errors.InsufficientPrivilege):
        ops.change_settings(operator_conn, {"smtp.host": "smtp.example.in"})
    names = {check["name"] for check in ops.doctor(operator_conn)}
    assert {"migrations at head", "settings valid", "firm data within limits"} <= names


def test_outbox_and_health(conn: psycopg.Connection[Any], operator_conn: ops.Connection) -> None:
    conn.execute(
        "INSERT INTO gstjobs.notifications (kind, channel, recipient, subject, body, status,"
        " dedupe_key) VALUES ('health-alert', 'email', 'ops@firm.in', 's', 'b', 'dead', 'k')"
    )
    [dead] = ops.outbox(operator_conn, status="dead")
    assert ops.notification(operator_conn, dead["id"])["dedupe_key"] == "k"  # type: ignore[index]
    assert ops.notification(operator_conn, 424242) is None
    assert ops.retry_notification(operator_conn, dead["id"])["status"] == "pending"
    assert ops.latest_health(operator_conn) is None
    report = ops.latest_health(operator_conn, run_first=True)
    assert report is not None and report["id"] > 0
