"""A secret goes only to the endpoint it was set for, never in clear off the machine, and no
operator can redirect it (docs/SECURITY.md, "Attacks")."""

from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli
from psycopg.types.json import Jsonb

from tests.conftest import ADMIN, OPERATOR, as_login
from tests.delivery.conftest import SmtpSink, WhatsAppApi, add
from tests.security.conftest import (
    SMTP_PASSWORD,
    TOKEN,
    Connect,
    SpyHttp,
    SpySmtp,
    nothing_changes,
    refused,
)

Delivering = tuple[psycopg.Connection[Any], SmtpSink, type[WhatsAppApi]]


def dispatch_now(conn: psycopg.Connection[Any]) -> tuple[str, str | None, dict[str, Any]]:
    """A manual run of dispatch-notifications: its status, error and counts."""
    run_id = conn.execute("CALL gstjobs.run_job('dispatch-notifications')").fetchone()
    assert run_id is not None
    row = conn.execute(
        "SELECT status, error, counts FROM gstjobs.runs WHERE id = %s", run_id
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def cli_as(db: str, login: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--dsn", as_login(db, login), *args])


def test_an_operator_cannot_point_smtp_or_whatsapp_at_a_listener(
    db: str, delivering: Delivering, spy_smtp: SpySmtp, spy_http: tuple[str, type[SpyHttp]]
) -> None:
    """The attack as reported: the operator points every endpoint at listeners of theirs,
    then runs dispatch. Every change is refused; the messages go where the admin said."""
    conn, smtp, api = delivering
    add(conn, 1, channel="email")
    add(conn, 1, channel="whatsapp", start=10)
    spy_url, spy = spy_http
    with nothing_changes(db):
        for key, value in (
            ("smtp.host", "127.0.0.1"),
            ("smtp.port", str(spy_smtp.port)),
            ("smtp.user", "alerts"),
            ("smtp.tls", "none"),
            ("whatsapp.url", spy_url),
        ):
            result = cli_as(db, OPERATOR, "config", "set", key, value)
            assert result.exit_code == 1, result.output
            assert f"{key} may be changed by members of gstjobs_admin only" in result.stderr
    ran = cli_as(db, OPERATOR, "run", "dispatch-notifications")
    assert ran.exit_code == 0, ran.output
    assert spy_smtp.logins == [] and spy_smtp.messages == [] and spy.requests == []
    assert len(smtp.received) == 1 and len(api.requests) == 1


def test_an_admin_who_moves_smtp_without_the_password_sends_it_nowhere(
    db: str, delivering: Delivering, spy_smtp: SpySmtp, connect_as: Connect
) -> None:
    conn, smtp, _ = delivering
    add(conn, 1, channel="email")
    admin = connect_as("admin")
    admin.execute("SELECT gstjobs.set_setting('smtp.port', %s)", (str(spy_smtp.port),))
    status, error, counts = dispatch_now(conn)
    # nothing was attempted: no connection, no login, the message waits with its attempts
    assert spy_smtp.logins == [] and spy_smtp.messages == [] and smtp.received == []
    assert status == "failed" and counts["sent"] == 0
    assert error is not None and "smtp.password was set for smtp://alerts@127.0.0.1:" in error
    assert "it is not used until it is set again" in error and SMTP_PASSWORD not in error
    note = conn.execute("SELECT status, attempts FROM gstjobs.notifications").fetchone()
    assert note == ("pending", 0)
    # health-check reports it, with the reason
    conn.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
    health = conn.execute("CALL gstjobs.run_job('health-check', reason => 'check')").fetchone()
    assert health is not None
    report = conn.execute("SELECT problems::text FROM gstjobs.health_reports").fetchone()
    assert report is not None and "dispatch-notifications" in report[0]
    assert "smtp.password was set for" in report[0]
    # set again with the endpoint, in one change: it is used, there
    admin.execute(
        "SELECT gstjobs.set_settings(%s)",
        (Jsonb({"smtp.port": str(smtp.port), "smtp.password": SMTP_PASSWORD}),),
    )
    assert dispatch_now(conn)[0] == "succeeded" and len(smtp.received) == 1


def test_an_admin_who_moves_whatsapp_without_the_token_sends_it_nowhere(
    delivering: Delivering, spy_http: tuple[str, type[SpyHttp]], connect_as: Connect
) -> None:
    conn, _, api = delivering
    add(conn, 1, channel="whatsapp")
    spy_url, spy = spy_http
    connect_as("admin").execute("SELECT gstjobs.set_setting('whatsapp.url', %s)", (spy_url,))
    status, error, _ = dispatch_now(conn)
    assert spy.requests == [] and api.requests == []
    assert status == "failed" and error is not None
    assert "whatsapp.token was set for " + api.url in error and TOKEN not in error


def test_a_password_never_travels_in_clear_beyond_this_machine(
    db: str, delivering: Delivering, connect_as: Connect
) -> None:
    admin = connect_as("admin")
    with nothing_changes(db):
        # a remote server with TLS off, and the password set with it: refused whole
        refused(
            admin,
            """SELECT gstjobs.set_settings('{"smtp.host": "smtp.example.in",
                                               "smtp.password": "x"}')""",
            "22023",
            "the SMTP password would travel in clear to smtp.example.in",
        )
        # the token over http:// to another machine
        refused(
            admin,
            """SELECT gstjobs.set_settings('{"whatsapp.url": "http://api.example.in/v19.0/1",
                                               "whatsapp.token": "t"}')""",
            "22023",
            "it must be https://",
        )
    # moving to a remote server with TLS is fine, the password set with it
    admin.execute(
        """SELECT gstjobs.set_settings('{"smtp.host": "smtp.example.in", "smtp.tls": "starttls",
                                           "smtp.password": "x"}')"""
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/v19.0/1",
        "https://[fe80::1]/v19.0/1",
        "https://[::ffff:169.254.169.254]/v19.0/1",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://user:pw@graph.facebook.com/v19.0/1",
        "http://graph.facebook.com/v19.0/1",
        "file:///etc/passwd",
    ],
)
def test_whatsapp_url_cannot_reach_metadata_or_leave_https(
    db: str, connect_as: Connect, url: str
) -> None:
    with nothing_changes(db):
        refused(
            connect_as("admin"),
            f"SELECT gstjobs.set_setting('whatsapp.url', '{url}')",
            "22023",
            "invalid value for whatsapp.url",
        )


def test_no_role_reads_a_secret(db: str, delivering: Delivering, connect_as: Connect) -> None:
    for role in ("operator", "admin", "app", "runner", "nobody"):
        conn = connect_as(role)
        for statement in (
            "SELECT * FROM gstjobs.secrets",
            "SELECT gstjobs.secret('smtp.password')",
            "SELECT * FROM gstjobs.delivery_problems(true)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    shown = cli_as(db, ADMIN, "config", "list", "--format", "json")
    assert shown.exit_code == 0 and SMTP_PASSWORD not in shown.output and TOKEN not in shown.output
    assert '"value": "********"' in shown.output
