"""The jobs commands (list, history, run, pause, resume, reschedule) through Click, as an operator."""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.cli.conftest import Invoke, as_json
from tests.conftest import JOBS, OPERATOR, wait_until
from tests.integration.conftest import FIRM
from tests.reliability.tripwire import TRIP_LOCK, TRIPWIRE


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, job, details, reason FROM gstjobs.audit_log ORDER BY id"
    ).fetchall()


def test_list_shows_every_job_with_schedule_and_next_run(gstjobs: Invoke) -> None:
    before = datetime.now(UTC)
    rows = as_json(gstjobs("list", "--format", "json"))
    after = datetime.now(UTC)
    assert [r["job"] for r in rows] == JOBS
    sla = next(r for r in rows if r["job"] == "sla-check")
    assert sla["schedule"] == "* * * * *" and sla["in_words"] == "Every minute (UTC)"
    assert sla["state"] == "active" and sla["failures_24h"] == 0
    # the next whole minute after the moment the command looked, whenever that was
    next_run = datetime.fromisoformat(sla["next_run"])
    assert next_run.second == 0 and before < next_run <= after + timedelta(minutes=1)
    hearing = next(r for r in rows if r["job"] == "hearing-reminders")
    assert hearing["local_slot"] == "08:00 firm time"
    table = gstjobs("list", "--tz", "Asia/Kolkata")
    assert table.exit_code == 0 and "IST" in table.stdout and "purge-history" in table.stdout
    csv = gstjobs("list", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("job,schedule,in_words")


def test_run_records_a_manual_run_and_an_audit_entry(
    gstjobs: Invoke, conn: psycopg.Connection[Any]
) -> None:
    result = as_json(
        gstjobs("run", "sla-check", "--reason", "client escalation", "--format", "json")
    )
    assert set(result) == {"job", "run_id", "status", "counts", "started_at", "finished_at"}
    assert result["job"] == "sla-check" and result["status"] == "succeeded"
    assert result["counts"]["found"] == 0
    [(actor, action, job, details, reason)] = audit(conn)
    assert (actor, action, job, reason) == (OPERATOR, "run", "sla-check", "client escalation")
    assert details["run_id"] == result["run_id"]
    history = as_json(gstjobs("history", "sla-check", "--format", "json"))
    assert history[0]["run_id"] == result["run_id"] and history[0]["trigger"] == "manual"
    assert history[0]["requested_by"] == OPERATOR
    assert (
        gstjobs("history", "sla-check", "--status", "failed", "--format", "json").stdout.strip()
        == "[]"
    )


def test_dry_run_shows_what_would_be_notified_and_changes_nothing(
    gstjobs: Invoke, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(FIRM.encode())
    conn.execute(
        "INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, sla_due_at)"
        " VALUES (1, 1, 1, 'Draft reply', 3, now() - interval '1 minute')"
    )
    result = gstjobs("run", "sla-check", "--dry-run")
    assert result.exit_code == 0, result.output
    assert (
        "dry run: nothing was changed" in result.stdout
        and "aarav@mehta.example.in" in result.stdout
    )
    assert conn.execute("SELECT count(*) FROM gstjobs.notifications").fetchone() == (0,)
    assert conn.execute("SELECT sla_breach_detected_at FROM litigation.tasks").fetchone() == (None,)
    as_json(gstjobs("run", "sla-check", "--format", "json"))
    assert conn.execute("SELECT count(*) FROM gstjobs.notifications").fetchone() == (2,)


def test_a_running_job_is_skipped_unless_waited_for(
    db: str, gstjobs: Invoke, conn: psycopg.Connection[Any]
) -> None:
    # a real run of heartbeat, held at its first write to the ledger after it began
    conn.execute(TRIPWIRE.encode())
    conn.execute(
        "CREATE TRIGGER tripwire BEFORE UPDATE ON gstjobs.runs"
        " FOR EACH ROW EXECUTE FUNCTION tripwire.trip('1')"
    )
    holder = psycopg.connect(db, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (TRIP_LOCK,))

    def hold() -> None:
        with psycopg.connect(db, autocommit=True) as running:
            running.execute("CALL gstjobs.run_job('heartbeat', reason => 'held')")

    held = threading.Thread(target=hold)
    held.start()
    wait_until(db, "SELECT 1 FROM gstjobs.runs WHERE reason = 'held' AND status = 'running'")
    wait_until(db, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory'")
    skipped = gstjobs("run", "heartbeat")
    assert (
        skipped.exit_code == 0
        and "skipped: another run of this job was in progress" in skipped.stdout
    )
    threading.Timer(1.0, holder.close).start()
    waited = as_json(gstjobs("run", "heartbeat", "--wait", "--format", "json"))
    held.join(30)
    assert waited["status"] == "succeeded"
    # it began once the held run had finished: it waited, it did not overlap
    order = conn.execute(
        "SELECT (SELECT finished_at FROM gstjobs.runs WHERE reason = 'held'),"
        " (SELECT started_at FROM gstjobs.runs WHERE id = %s)",
        (waited["run_id"],),
    ).fetchone()
    assert order is not None and order[0] is not None and order[0] <= order[1]


def test_a_failed_job_exits_1_with_its_error(
    gstjobs: Invoke, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(
        "CREATE FUNCTION public.broken(bigint, timestamptz, bigint, boolean) RETURNS jsonb"
        " LANGUAGE sql RETURN (1 / 0)::text::jsonb"
    )
    conn.execute(
        "GRANT EXECUTE ON FUNCTION public.broken(bigint, timestamptz, bigint, boolean) TO gstjobs_owner"
    )
    conn.execute(
        "INSERT INTO gstjobs.jobs (name, description, default_schedule, body)"
        " VALUES ('test-broken', 'fails', '* * * * *', 'public.broken(bigint, timestamptz, bigint, boolean)')"
    )
    result = gstjobs("run", "test-broken")
    assert result.exit_code == 1
    assert "test-broken failed: division by zero" in result.stderr


def test_pause_resume_reschedule_are_audited(
    gstjobs: Invoke, conn: psycopg.Connection[Any]
) -> None:
    assert (
        gstjobs("pause", "sla-check", "--reason", "maintenance").stdout.strip()
        == "sla-check paused"
    )
    assert gstjobs("pause", "sla-check").stdout.strip() == "sla-check was already paused"
    state = as_json(gstjobs("list", "--format", "json"))
    assert next(r for r in state if r["job"] == "sla-check")["state"] == "paused"
    assert next(r for r in state if r["job"] == "sla-check")["next_run"] is None
    assert gstjobs("resume", "sla-check").stdout.strip() == "sla-check resumed"
    result = gstjobs("reschedule", "purge-history", "0 20 * * *")
    assert result.exit_code == 0 and "30 21 * * * -> 0 20 * * *" in result.stdout
    assert conn.execute(
        "SELECT schedule, active FROM cron.job WHERE jobname = 'purge-history'"
    ).fetchone() == ("0 20 * * *", True)
    entries = [(a[1], a[2], a[3]) for a in audit(conn)]
    assert entries == [
        ("pause", "sla-check", {"old": {"active": True}, "new": {"active": False}}),
        ("resume", "sla-check", {"old": {"active": False}, "new": {"active": True}}),
        (
            "reschedule",
            "purge-history",
            {"old": {"schedule": "30 21 * * *"}, "new": {"schedule": "0 20 * * *"}},
        ),
    ]
    assert audit(conn)[0][4] == "maintenance"


@pytest.mark.parametrize(
    "schedule",
    ["*/15 * * * * *", "61 * * * *", "", "@hourly", "* * * *", "0 0 32 * *", "x * * * *"],
)
def test_bad_cron_text_is_refused_with_the_accepted_form(
    gstjobs: Invoke, conn: psycopg.Connection[Any], schedule: str
) -> None:
    result = gstjobs("reschedule", "sla-check", schedule)
    assert result.exit_code == 2
    assert "invalid schedule" in result.stderr and "five fields in UTC" in result.stderr
    assert conn.execute("SELECT schedule FROM cron.job WHERE jobname = 'sla-check'").fetchone() == (
        "* * * * *",
    )
    assert audit(conn) == []


def test_operator_has_no_back_door(db: str, operator_role: str) -> None:
    with psycopg.connect(db.replace("postgres@", f"{OPERATOR}@"), autocommit=True) as operator:
        for statement in (
            "INSERT INTO gstjobs.runs (job, trigger, as_of) VALUES ('heartbeat', 'manual', now())",
            "UPDATE gstjobs.notifications SET status = 'sent'",
            "DELETE FROM gstjobs.audit_log",
            "INSERT INTO litigation.tenants (name) VALUES ('x')",
            "SELECT * FROM litigation.tasks",
            "SELECT cron.schedule('x', '* * * * *', 'SELECT 1')",
            "SELECT * FROM cron.job",
            "SELECT gstjobs.secret('smtp.password')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                operator.execute(statement)
        # a job's body is executed by the owner only, inside a run of gstjobs.run_job
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            operator.execute("SELECT gstjobs.job_sla_check(1, now(), NULL, false)")


def test_a_refusal_from_inside_run_job_reads_as_the_server_said_it(gstjobs: Invoke) -> None:
    """Raised by start_run, raised again by run_begin and run_job: one plain line, no
    'plpy.Error', no traceback."""
    result = gstjobs("run", "sla-check", "--tenant", "424242")
    assert result.exit_code == 2 and result.stderr == "gstjobs: unknown tenant 424242\n"
