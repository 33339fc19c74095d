"""Monitoring as DBAs run it: Debian's prometheus-postgres-exporter with monitoring/queries.yaml,
connected as a login that is only a member of gstjobs_monitor, scraped after known runs; and the
alert rules checked and unit-tested by Debian's promtool."""

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from bench.database import free_port
from tests.conftest import JOBS, ROOT, as_login, login_role

EXPORTER = "/usr/bin/prometheus-postgres-exporter"
PROMTOOL = "/usr/bin/promtool"
MONITOR = "gstjobs_test_monitor"
QUERIES = ROOT / "monitoring" / "queries.yaml"


def test_the_alert_rules_are_valid_and_fire_as_their_tests_say() -> None:
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(ROOT / "monitoring" / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"],
        cwd=ROOT / "monitoring",
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.fixture
def scrape(db: str, server: str) -> Iterator[Any]:
    """scrape(): the exporter's metrics now, {(name, frozenset(labels)): value}; the exporter
    connected to the test's database as a login in gstjobs_monitor only."""
    login_role(server, MONITOR, "gstjobs_monitor")
    port = free_port()
    exporter = subprocess.Popen(
        [
            EXPORTER,
            f"--extend.query-path={QUERIES}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--disable-default-metrics",
            "--disable-settings-metrics",
            "--no-collector.database",
            "--no-collector.bgwriter",
        ],
        env={"DATA_SOURCE_NAME": as_login(db, MONITOR) + "?sslmode=disable", "PATH": "/usr/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def read() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                    return parse(r.read().decode())
            except OSError:
                assert exporter.poll() is None, exporter.communicate()[0]
                assert time.monotonic() < deadline, "the exporter never answered"
                time.sleep(0.2)

    try:
        yield read
    finally:
        exporter.terminate()
        output = exporter.communicate(timeout=30)[0]
        # nothing of our queries failed (the exporter logs a query's error and goes on)
        assert "gstjobs" not in output or "level=error" not in output, output


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus's text format, the lines of metrics whose name starts with gstjobs_ (and the
    exporter's own load-error gauge)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        pairs = frozenset(
            tuple(part.split("=", 1)) for part in labels.rstrip("}").split(",") if part
        )
        cleaned = frozenset((k, v.strip('"')) for k, v in pairs)
        found[(name, cleaned)] = float(value)
    return found


def metric(found: dict[Any, float], name: str, **labels: str) -> float:
    wanted = {(k, v) for k, v in labels.items()}
    matches = [v for (n, ls), v in found.items() if n == name and wanted <= ls]
    assert len(matches) == 1, (name, labels, [k for k in found if k[0] == name])
    return matches[0]


def test_the_exporter_shows_each_job_channel_and_late_firm_after_known_runs(
    conn: psycopg.Connection[Any], scrape: Any
) -> None:
    conn.execute(
        "INSERT INTO litigation.tenants (id, name, timezone) VALUES (7, 'Iyer Legal', 'Asia/Kolkata')"
    )
    conn.execute("CALL gstjobs.run_job('heartbeat')")
    conn.execute(
        "INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, finished_at, error)"
        " VALUES ('sla-check', 'manual', now(), 'failed', now() - interval '1 min',"
        " now() - interval '50 s', 'boom'),"
        " ('analytics-snapshot', 'manual', now(), 'cancelled', now() - interval '1 min',"
        " now() - interval '30 s', 'cancelled by someone')"
    )
    conn.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body,"
        " status, attempts, dedupe_key, next_attempt_at, sent_at) VALUES"
        " (7, 'sla-breach', 'email', 'a@b.in', 'S', 'B', 'dead', 8, 'k1', now(), NULL),"
        " (7, 'sla-breach', 'email', 'c@b.in', 'S', 'B', 'pending', 0, 'k2',"
        "  now() - interval '10 min', NULL),"
        " (7, 'sla-breach', 'whatsapp', '+919800000001', 'S', 'B', 'sent', 1, 'k3', now(), now()),"
        # held through quiet hours until 08:00; ended unsent by an opt-out
        " (7, 'sla-breach', 'whatsapp', '+919800000002', 'S', 'B', 'pending', 0, 'k4',"
        "  now() + interval '5 hours', NULL)"
    )
    conn.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body,"
        " status, dedupe_key, suppressed_at) VALUES"
        " (7, 'sla-breach', 'whatsapp', '+919800000005', 'S', 'B', 'suppressed', 'k5', now()),"
        " (7, 'sla-breach', 'whatsapp', '+919800000006', 'S', 'B', 'suppressed', 'k6',"
        "  now() - interval '2 days')"
    )
    # firm 7's 08:00 slot today taken 40 minutes late
    conn.execute(
        "INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at, processed_at)"
        " VALUES ('hearing-reminders', 7, current_date, 'late', now() - interval '50 min',"
        " now() - interval '10 min')"
    )
    heartbeat = conn.execute(
        "SELECT extract(epoch FROM finished_at), extract(epoch FROM finished_at - started_at)"
        " FROM gstjobs.runs WHERE job = 'heartbeat'"
    ).fetchone()
    assert heartbeat is not None

    throttled = conn.execute(
        "UPDATE gstjobs.send_rates SET pace = 0.95, slowed_at = now() - interval '90 s'"
        " WHERE channel = 'whatsapp' RETURNING extract(epoch FROM slowed_at)"
    ).fetchone()
    assert throttled is not None

    found = scrape()
    assert metric(found, "pg_exporter_user_queries_load_error", filename=str(QUERIES)) == 0
    # per job: every job, its state, last success and duration, runs by outcome, timeout
    assert {dict(ls)["job_name"] for (n, ls) in found if n == "gstjobs_job_active"} == set(JOBS)
    assert metric(found, "gstjobs_job_active", job_name="heartbeat") == 1
    assert metric(
        found, "gstjobs_job_last_success_timestamp_seconds", job_name="heartbeat"
    ) == pytest.approx(float(heartbeat[0]), abs=0.01)
    assert metric(
        found, "gstjobs_job_last_duration_seconds", job_name="heartbeat"
    ) == pytest.approx(float(heartbeat[1]), abs=0.01)
    assert metric(found, "gstjobs_job_runs_runs_24h", job_name="heartbeat", status="succeeded") == 1
    assert metric(found, "gstjobs_job_runs_runs_24h", job_name="sla-check", status="failed") == 1
    assert metric(found, "gstjobs_job_runs_runs_24h", job_name="sla-check", status="succeeded") == 0
    assert (
        metric(
            found, "gstjobs_job_runs_runs_24h", job_name="analytics-snapshot", status="cancelled"
        )
        == 1
    )
    assert metric(found, "gstjobs_job_timeout_seconds", job_name="dispatch-notifications") == 75
    assert metric(found, "gstjobs_job_timeout_seconds", job_name="sla-check") == 600
    assert metric(found, "gstjobs_schedule_interval_seconds", job_name="sla-check") == 60
    assert metric(found, "gstjobs_schedule_interval_seconds", job_name="purge-history") == 86400
    assert metric(found, "gstjobs_job_running", job_name="sla-check") == 0
    # missed ticks: what the schedule called for since the job was scheduled, pg_cron having
    # run nothing in this copy of the database (its run history is the template's)
    expected = dict(
        conn.execute("SELECT job, missed_ticks FROM gstjobs.schedule_facts()").fetchall()
    )
    assert (
        metric(found, "gstjobs_schedule_missed_ticks_24h", job_name="purge-history")
        == expected["purge-history"]
    )
    assert (
        abs(
            metric(found, "gstjobs_schedule_missed_ticks_24h", job_name="sla-check")
            - expected["sla-check"]
        )
        <= 1
    )
    # per channel
    assert metric(found, "gstjobs_outbox_dead", channel="email") == 1
    assert metric(found, "gstjobs_outbox_pending", channel="email") == 1
    assert metric(found, "gstjobs_outbox_dead", channel="whatsapp") == 0
    assert metric(found, "gstjobs_outbox_sent_24h", channel="whatsapp") == 1
    assert metric(found, "gstjobs_outbox_held", channel="whatsapp") == 1
    assert metric(found, "gstjobs_outbox_held", channel="email") == 0  # k2 is due: not held
    assert metric(found, "gstjobs_outbox_suppressed_24h", channel="whatsapp") == 1
    assert 600 <= metric(found, "gstjobs_outbox_oldest_due_seconds", channel="email") < 700
    assert metric(found, "gstjobs_outbox_backlog_after_seconds", channel="email") == 1800
    # WhatsApp's provider answered 429 (the dispatch run slowed the channel then); email's never
    assert metric(
        found, "gstjobs_outbox_last_throttled_timestamp_seconds", channel="whatsapp"
    ) == pytest.approx(float(throttled[0]), abs=0.01)
    assert metric(found, "gstjobs_outbox_last_throttled_timestamp_seconds", channel="email") == 0
    # per firm: the late slot, 40 minutes
    assert metric(
        found,
        "gstjobs_slot_lateness_seconds",
        job_name="hearing-reminders",
        tenant_id="7",
        status="late",
    ) == pytest.approx(2400, abs=1)


def test_the_monitoring_login_reads_the_metrics_and_nothing_else(db: str, server: str) -> None:
    login_role(server, MONITOR, "gstjobs_monitor")
    with psycopg.connect(as_login(db, MONITOR), autocommit=True) as monitor:
        assert monitor.execute("SELECT count(*) FROM gstjobs.job_metrics").fetchone() == (8,)
        for statement in (
            "SELECT * FROM gstjobs.outbox",
            "SELECT * FROM gstjobs.run_history",
            "SELECT * FROM litigation.tenants",
            "CALL gstjobs.run_job('heartbeat')",
            "SELECT gstjobs.cancel_job('heartbeat')",
            "SELECT gstjobs.set_active('heartbeat', false)",
            "SELECT gstjobs.enforce_timeouts()",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                monitor.execute(statement)
