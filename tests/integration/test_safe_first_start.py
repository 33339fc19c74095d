"""A safe first start: nothing is sent until an administrator configures delivery on purpose,
and a copy of the database (restored onto another server, or under another name) sends
nothing until an administrator confirms it is the production one."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli
from psycopg.types.json import Jsonb

from tests.conftest import ADMIN, OPERATOR, admin, as_login, database, dsn
from tests.delivery.conftest import SmtpSink, add
from tests.integration.conftest import FIRM, at, run


def pending_email(conn: psycopg.Connection[Any]) -> None:
    add(conn, 1)


def last_dispatch(conn: psycopg.Connection[Any]) -> tuple[str, str | None]:
    conn.execute("CALL gstjobs.run_job('dispatch-notifications')")
    row = conn.execute(
        "SELECT status, error FROM gstjobs.runs WHERE job = 'dispatch-notifications'"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_fresh_install_sends_no_email_until_its_server_is_set(
    firm: psycopg.Connection[Any], admin_role: str
) -> None:
    pending_email(firm)
    assert last_dispatch(firm) == ("succeeded", None)
    assert firm.execute("SELECT status, attempts FROM gstjobs.notifications").fetchone() == (
        "pending",
        0,
    )
    firm.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
    run(firm, "health-check", datetime.now(UTC))
    problems = firm.execute(
        "SELECT problems FROM gstjobs.health_reports ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert problems is not None
    [stopped] = [p for p in problems[0] if p["code"] == "delivery-stopped"]
    assert stopped["subject"] == "email" and "smtp.host is not set" in stopped["message"]


@pytest.fixture
def production(server: str, admin_role: str, operator_role: str) -> Iterator[str]:
    """A database with the firm, delivering to a loopback server, and a message waiting."""
    with database(server) as target:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(FIRM.encode())
            pending_email(conn)
            run(conn, "hearing-reminders", at("2026-11-20 08:05"))  # takes firm 1's slot
        yield target


@pytest.fixture
def copy(production: str) -> Iterator[str]:
    """The production database copied under another name (a restore does the same)."""
    name = "gstjobs_copy_" + production.rsplit("/", 1)[1]
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{production.rsplit("/", 1)[1]}"')
    try:
        yield dsn(name)
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def deliver_to(conn: psycopg.Connection[Any], smtp: SmtpSink) -> None:
    conn.execute(
        "SELECT gstjobs.set_settings(%s)",
        (Jsonb({"smtp.host": "127.0.0.1", "smtp.port": str(smtp.port)}),),
    )


@pytest.mark.parametrize("how", ["under another name", "onto another server"])
def test_a_copy_sends_nothing_until_an_administrator_adopts_it(copy: str, how: str) -> None:
    smtp = SmtpSink()
    smtp.start()
    try:
        with psycopg.connect(copy, autocommit=True) as conn:
            if how == "onto another server":
                # a restore onto another cluster: the identity recorded is not this server's
                conn.execute(
                    "UPDATE gstjobs.installation SET system_identifier = 42, database_name = current_database()"
                )
            deliver_to(conn, smtp)
            status, error = last_dispatch(conn)
            assert status == "failed" and error is not None
            assert "this database is a copy" in error and smtp.received == []
            # the local-time slots came with the copy: taken once, not again
            assert run(conn, "hearing-reminders", at("2026-11-20 08:20"))["slots"] == 0
        doctor = CliRunner().invoke(cli, ["--dsn", as_login(copy, OPERATOR), "doctor"])
        assert (
            doctor.exit_code == 1
            and "FAIL  production copy: this database is a copy" in doctor.stdout
        )
        refused = CliRunner().invoke(cli, ["--dsn", as_login(copy, OPERATOR), "doctor", "--adopt"])
        assert refused.exit_code == 1 and "for members of gstjobs_admin only" in refused.stderr
        adopted = CliRunner().invoke(
            cli, ["--dsn", as_login(copy, ADMIN), "doctor", "--adopt", "--reason", "DR switch-over"]
        )
        assert "confirmed as production (it was a copy: it sends from now on)" in adopted.stdout
        with psycopg.connect(copy, autocommit=True) as conn:
            conn.execute("UPDATE gstjobs.notifications SET next_attempt_at = now()")
            assert last_dispatch(conn) == ("succeeded", None)
            assert len(smtp.received) == 1
            audit = conn.execute(
                "SELECT reason FROM gstjobs.audit_log WHERE action = 'installation.adopt'"
            ).fetchall()
            assert audit == [("DR switch-over",)]
    finally:
        smtp.stop()


def test_the_original_keeps_sending(production: str) -> None:
    smtp = SmtpSink()
    smtp.start()
    try:
        with psycopg.connect(production, autocommit=True) as conn:
            deliver_to(conn, smtp)
            assert last_dispatch(conn) == ("succeeded", None) and len(smtp.received) == 1
    finally:
        smtp.stop()
