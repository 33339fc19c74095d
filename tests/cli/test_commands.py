"""Every command through Click, as an operator, against the real server."""

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.cli.conftest import Invoke, as_json
from tests.conftest import ADMIN, JOBS, OPERATOR, as_login, wait_until
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


def add_notification(
    conn: psycopg.Connection[Any], key: str, status: str, tenant: int = 1, kind: str = "sla-breach"
) -> int:
    row = conn.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body, status,"
        " attempts, last_error, dedupe_key, sent_at) VALUES (%s, %s, 'email', 'a@b.in', 'Subject ' || %s,"
        " 'Body', %s, 8, 'SMTP 550 mailbox unavailable', %s, CASE WHEN %s = 'sent' THEN now() END) RETURNING id",
        (tenant, kind, key, status, key, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_outbox_lists_shows_and_retries(gstjobs: Invoke, conn: psycopg.Connection[Any]) -> None:
    conn.execute(FIRM.encode())
    dead = add_notification(conn, "k1", "dead")
    add_notification(conn, "k2", "sent", tenant=2, kind="hearing-reminder")
    pending = add_notification(conn, "k3", "pending")
    rows = as_json(gstjobs("outbox", "--format", "json"))
    assert [r["id"] for r in rows] == [pending, pending - 1, dead]
    for field in (
        "id",
        "tenant_id",
        "kind",
        "channel",
        "recipient",
        "subject",
        "body",
        "status",
        "attempts",
        "dedupe_key",
        "created_at",
        "sent_at",
    ):
        assert field in rows[0]
    assert [
        r["id"] for r in as_json(gstjobs("outbox", "--status", "dead", "--format", "json"))
    ] == [dead]
    assert [r["kind"] for r in as_json(gstjobs("outbox", "--tenant", "2", "--format", "json"))] == [
        "hearing-reminder"
    ]
    assert (
        len(as_json(gstjobs("outbox", "--kind", "sla-breach", "--limit", "1", "--format", "json")))
        == 1
    )
    shown = as_json(gstjobs("outbox", "show", str(dead), "--format", "json"))
    assert shown["last_error"] == "SMTP 550 mailbox unavailable"

    retried = gstjobs("outbox", "retry", str(dead), "--reason", "mailbox fixed")
    assert retried.exit_code == 0 and "dead -> pending" in retried.stdout
    assert conn.execute(
        "SELECT status, attempts FROM gstjobs.notifications WHERE id = %s", (dead,)
    ).fetchone() == ("pending", 0)
    [(_, action, _, details, reason)] = audit(conn)
    assert (
        action == "outbox.retry"
        and details["old"]["status"] == "dead"
        and reason == "mailbox fixed"
    )

    again = gstjobs("outbox", "retry", str(pending))
    assert again.exit_code == 2 and "is pending, not dead or failed" in again.stderr
    assert gstjobs("outbox", "show", "999999").exit_code == 2
    assert len(audit(conn)) == 1


def test_config_validates_and_never_shows_a_secret(
    gstjobs: Invoke, db: str, conn: psycopg.Connection[Any], admin_role: str
) -> None:
    admin = as_login(db, ADMIN)
    assert gstjobs("config", "set", "smtp.port", "587", dsn=admin).stdout.strip() == (
        "smtp.port = 587"
    )
    assert gstjobs("config", "get", "smtp.port").stdout.strip() == "587"
    secret = "s3cr3t-app-password"
    result = gstjobs("config", "set", "smtp.password", "-", input=secret + "\n", dsn=admin)
    assert result.exit_code == 0 and secret not in result.output
    for fmt in ("table", "json", "csv"):
        for args in (("config", "list"), ("config", "get", "smtp.password")):
            shown = gstjobs(*args, "--format", fmt)
            assert shown.exit_code == 0 and secret not in shown.output
    assert gstjobs("config", "get", "smtp.password").stdout.strip() == "********"
    assert conn.execute(
        "SELECT value FROM gstjobs.secrets WHERE key = 'smtp.password'"
    ).fetchone() == (secret,)
    assert secret not in json.dumps([list(map(str, a)) for a in audit(conn)])
    with (
        psycopg.connect(db.replace("postgres@", f"{OPERATOR}@")) as operator,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        operator.execute("SELECT * FROM gstjobs.secrets")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("smtp.prot", "25", "unknown setting 'smtp.prot'; settings are:"),
        ("smtp.port", "99999", "it must be a whole number from 1 to 65535"),
        ("smtp.port", "twenty-five", "it must be a whole number from 1 to 65535"),
        ("ops.timezone", "Asia/Bombayy", "IANA time zone"),
        ("dispatch.per_run_limit", "0", "a whole number from 1 to 100000"),
        ("dispatch.max_attempts", "2.5", "a whole number from 1 to 100"),
        ("smtp.tls", "ssl", "none, starttls or tls"),
        ("ops.email", "ops@firm.in, not-an-address", "'not-an-address' is not an email address"),
        ("whatsapp.url", "ftp://x", "it must be an https:// URL"),
        ("ops.email", "x' OR '1'='1", "is not an email address"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    gstjobs: Invoke,
    db: str,
    conn: psycopg.Connection[Any],
    admin_role: str,
    key: str,
    value: str,
    message: str,
) -> None:
    # as an administrator, who may change every one of these: refused for the value alone
    result = gstjobs("config", "set", key, value, dsn=as_login(db, ADMIN))
    assert result.exit_code == 2 and message in result.stderr
    assert conn.execute("SELECT count(*) FROM gstjobs.settings").fetchone() == (0,)
    assert audit(conn) == []


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
    result = gstjobs("doctor", dsn=cron_db.replace("postgres@", f"{OPERATOR}@"))
    assert result.exit_code == 0, result.stdout
    assert "FAIL" not in result.stdout


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
