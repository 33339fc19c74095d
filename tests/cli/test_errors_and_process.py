"""Errors are for people (exit codes 1, 2, 3, no traceback); the installed command works."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.cli.conftest import Invoke
from tests.conftest import JOBS, PORT

GSTJOBS = Path(sys.executable).parent / "gstjobs"


def test_unreachable_server_exits_3_naming_it_without_the_password() -> None:
    result = CliRunner().invoke(cli, ["--dsn", "postgresql://ops:hunter2@127.0.0.1:1/gst", "list"])
    assert result.exit_code == 3
    assert "cannot connect to ops@127.0.0.1:1/gst" in result.stderr
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_a_database_without_gstjobs_exits_3_and_says_to_migrate(server: str) -> None:
    result = CliRunner().invoke(
        cli, ["--dsn", f"postgresql://postgres@127.0.0.1:{PORT}/postgres", "list"]
    )
    assert result.exit_code == 3 and "alembic upgrade head" in result.stderr


def test_a_role_without_gstjobs_operator_is_told_which_role_it_needs(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gstjobs_test_stranger')"
            " THEN CREATE ROLE gstjobs_test_stranger LOGIN; END IF; END $$"
        )
    result = CliRunner().invoke(
        cli, ["--dsn", db.replace("postgres@", "gstjobs_test_stranger@"), "list"]
    )
    assert result.exit_code == 1
    assert "connect as a member of gstjobs_operator" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "sla"], "unknown job 'sla'; jobs are: analytics-snapshot"),
        (["run", "nope"], "unknown job 'nope'"),
        (["pause", "x'; DROP TABLE gstjobs.runs; --"], "unknown job"),
        (["run", "sla-check", "--as-of", "yesterday"], "is not an ISO 8601 time"),
        (["run", "sla-check", "--as-of", "2026-11-20T08:00:00"], "has no UTC offset"),
        (["run", "sla-check", "--as-of", "2099-01-01T00:00:00+05:30"], "is in the future"),
        (["run", "sla-check", "--tenant", "424242"], "unknown tenant 424242"),
        (["run", "sla-check", "--reason", "x" * 1001], "at most 1000"),
        (["config", "get", "smtp.hots"], "unknown setting 'smtp.hots'"),
        (["list", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["outbox", "retry", "31337"], "no notification 31337"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_changes_nothing(
    gstjobs: Invoke, conn: psycopg.Connection[object], args: list[str], message: str
) -> None:
    result = gstjobs(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM gstjobs.runs), (SELECT count(*) FROM gstjobs.audit_log),"
        " (SELECT count(*) FROM gstjobs.settings), to_regclass('gstjobs.runs') IS NOT NULL"
    ).fetchone()
    assert counts == (0, 0, 0, True)


def test_every_command_has_help_with_an_example() -> None:
    def walk(command: click.Command, path: list[str]) -> list[list[str]]:
        found = [path]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += walk(sub, [*path, name])
        return found

    for path in walk(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.output, path


def test_the_installed_command(db: str, operator_role: str) -> None:
    env = {**os.environ, "GSTJOBS_DSN": db.replace("postgres@", f"{operator_role}@")}
    result = subprocess.run(
        [str(GSTJOBS), "list", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [job["job"] for job in json.loads(result.stdout)] == JOBS
    bad = subprocess.run(
        [str(GSTJOBS), "run", "nope"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and bad.stderr.startswith("gstjobs: unknown job 'nope'")


def test_watch_redraws_until_interrupted(db: str, operator_role: str) -> None:
    env = {**os.environ, "GSTJOBS_DSN": db.replace("postgres@", f"{operator_role}@")}
    process = subprocess.Popen(
        [str(GSTJOBS), "list", "--watch", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background (`make test &`) passes on
        # SIGINT ignored, and Ctrl-C would then not reach it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # read as it draws; interrupt once it has drawn twice (or give up after a generous bound)
    assert process.stdout is not None
    drawn: list[str] = []
    reader = threading.Thread(target=lambda: drawn.extend(iter(process.stdout.readline, "")))
    reader.start()
    deadline = time.monotonic() + 60
    while sum("Ctrl-C to stop" in line for line in list(drawn)) < 2:
        assert time.monotonic() < deadline and process.poll() is None, "it did not redraw"
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()  # never left behind, whatever happened
    reader.join(30)
    out = "".join(drawn)
    assert process.returncode == 0, err
    assert out.count("Ctrl-C to stop") >= 2 and "sla-check" in out
