"""Every setting is typed and bounded where it is stored: refused alike through SQL, the CLI
(exit 2) and a DBA's direct write, changing nothing; who may change what is enforced
(docs/SECURITY.md, "Attacks")."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.conftest import ADMIN, OPERATOR, as_login
from tests.security.conftest import Connect, nothing_changes, refused

# (key, value, what the refusal says): each as an administrator, who may change every key
BAD = [
    ("smtp.user", "alerts\r\nRCPT TO:<spy@evil.example>", "control character"),
    ("smtp.timeout_seconds", "999999999", "a whole number from 1 to 300"),
    ("smtp.timeout_seconds", "0", "a whole number from 1 to 300"),
    ("whatsapp.timeout_seconds", "86400", "a whole number from 1 to 300"),
    ("smtp.ca_file", "/etc/shadow", "a file in /etc/gstjobs/ca"),
    ("smtp.ca_file", "/etc/gstjobs/ca/../../shadow", "no . or .."),
    ("smtp.port", "0", "a whole number from 1 to 65535"),
    ("smtp.connections", "1000000", "a whole number from 1 to 64"),
    ("slots.catchup_hours", "100000", "a whole number from 1 to 168"),
    ("retention.run_history_days", "0", "a whole number from 7 to 3650"),
    ("ops.timezone", "Mars/Olympus", "IANA time zone"),
    ("ops.email", "a@[b", "is not an email address"),
    ("ops.email", "x@[y.z", "is not an email address"),
    ("ops.email", "a\x1cb@firm.in", "control character"),
    ("ops.email", "a\x85b@firm.in", "control character"),
    ("ops.email", "a\u00a0b@firm.in", "control character"),
    ("smtp.from", "a@b.in\r\nBcc: spy@evil.example", "control character"),
    ("smtp.reply_to", "desk@firm.in, a@[b", "is not an email address"),
    ("smtp.host", "169.254.169.254", "link-local"),
    ("smtp.host", "mail.example.in\nX", "control character"),
    ("whatsapp.token", "token\r\nX-Injected: 1", "no line break"),
]


@pytest.mark.parametrize(
    ("key", "value", "problem"), BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD]
)
def test_a_bad_value_is_refused_by_sql_the_cli_and_the_table(
    db: str, conn: psycopg.Connection[Any], connect_as: Connect, key: str, value: str, problem: str
) -> None:
    with nothing_changes(db):
        refused(
            connect_as("admin"),
            f"SELECT gstjobs.set_setting('{key}', $${value}$$)",
            "22023",
            problem,
        )
        result = CliRunner().invoke(
            cli, ["--dsn", as_login(db, ADMIN), "config", "set", key, value]
        )
        assert result.exit_code == 2 and problem in result.stderr, result.output
        if key != "whatsapp.token":  # secrets are not in gstjobs.settings
            refused(
                conn,
                f"INSERT INTO gstjobs.settings (key, value) VALUES ('{key}', $${value}$$)",
                "22023",
                problem,
            )


def test_who_may_change_what(db: str, connect_as: Connect) -> None:
    operator, admin = connect_as("operator"), connect_as("admin")
    with nothing_changes(db):
        for key, value in (
            ("smtp.host", "smtp.example.in"),
            ("smtp.password", "x"),
            ("whatsapp.url", "https://graph.facebook.com/v19.0/1"),
            ("whatsapp.token", "t"),
            ("smtp.ca_file", "/etc/gstjobs/ca/relay.pem"),
            ("retention.audit_days", "400"),
            # a provider's contract, like the endpoint: an operator cannot flood it
            ("smtp.rate_per_second", "10000"),
            ("whatsapp.rate_per_second", "1000"),
        ):
            refused(
                operator,
                f"SELECT gstjobs.set_setting('{key}', '{value}')",
                "42501",
                "gstjobs_admin",
            )
        # which server files gstjobs may read is a superuser's to say
        for conn in (operator, admin):
            refused(
                conn, "SELECT gstjobs.set_setting('smtp.ca_dir', '/')", "42501", "superuser only"
            )
        for role in ("app", "runner", "nobody"):
            refused(connect_as(role), "SELECT gstjobs.set_setting('ops.email', 'x@y.in')", "42501")
    # what operators may change, they may
    operator.execute("SELECT gstjobs.set_setting('dispatch.run_seconds', '50')")


def test_one_change_is_all_or_nothing(db: str, connect_as: Connect) -> None:
    with nothing_changes(db):
        refused(
            connect_as("admin"),
            """SELECT gstjobs.set_settings('{"smtp.port": "587", "smtp.timeout_seconds": "0"}')""",
            "22023",
            "smtp.timeout_seconds",
        )


@pytest.mark.parametrize(
    "schedule",
    [
        "0 0 31 2 *",
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
        "*/5 * * * *\n",
        "*/5\t* * * *",
        " */5 * * * *",
        "0 0 29 2 *",
    ],
)
def test_a_schedule_must_fire_every_year_and_hide_nothing(
    db: str, connect_as: Connect, schedule: str
) -> None:
    with nothing_changes(db):
        refused(
            connect_as("operator"),
            "SELECT gstjobs.reschedule('sla-check', %s)".replace("%s", "$$" + schedule + "$$"),
            "22023",
            "invalid schedule",
        )


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:hunter2@[::1",
        "postgresql://u:hunter2%zz@127.0.0.1/db",
        "host=127.0.0.1 password='hunter2",
        "postgresql://u:hunter2@127.0.0.1:1/db",
        "host=127.0.0.1 port=1 password=hunter2 dbname=x",
        "postgresql://u:hun@ter2@127.0.0.1:1/db",
    ],
)
def test_a_bad_dsn_exits_3_in_one_line_without_the_password(dsn: str) -> None:
    """Through the real command, as an operator types it."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gstjobs"), "--dsn", dsn, "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert "hunter" not in result.stderr + result.stdout and "ter2" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("gstjobs: ") and len(result.stderr.splitlines()) == 2


def test_the_operator_login_never_reaches_another_door(db: str, connect_as: Connect) -> None:
    """What an operator has is what the matrix lists; spot checks of what it must not have."""
    operator = connect_as("operator")
    with nothing_changes(db):
        for statement in (
            "INSERT INTO gstjobs.settings (key, value) VALUES ('ops.email', 'x@y.in')",
            "UPDATE gstjobs.secrets SET endpoint = NULL",
            "INSERT INTO gstjobs.runs (job, trigger, as_of) VALUES ('heartbeat', 'manual', now())",
            "DELETE FROM gstjobs.slots",
            "UPDATE gstjobs.notifications SET status = 'sent'",
            "SELECT cron.schedule('x', '* * * * *', 'SELECT 1')",
            "SELECT * FROM litigation.tasks",
        ):
            refused(operator, statement, "42501")
    assert OPERATOR in as_login(db, OPERATOR)
