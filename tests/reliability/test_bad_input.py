"""The bad-input catalogue: each case is refused with a clear message (exit 2, or a specific
SQLSTATE) and changes nothing: a checksum of every toolkit and firm table is the same after."""

from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.conftest import ADMIN, OPERATOR, checksum
from tests.integration.conftest import FIRM

INJECTION = "x'); DROP TABLE gstjobs.runs; --"

CLI_CASES: list[tuple[list[str], str]] = [
    (["run", "sla"], "unknown job 'sla'"),
    (["run", ""], "unknown job ''"),
    (["run", INJECTION], "unknown job"),
    (["run", "sla-check", "--as-of", "yesterday"], "not an ISO 8601 time"),
    (["run", "sla-check", "--as-of", "2026-11-20T08:00:00"], "has no UTC offset"),
    (["run", "sla-check", "--as-of", "2099-01-01T00:00:00+05:30"], "is in the future"),
    (["run", "sla-check", "--as-of", "2026-13-01T00:00:00+05:30"], "not an ISO 8601 time"),
    (["run", "sla-check", "--as-of", INJECTION], "not an ISO 8601 time"),
    (["run", "sla-check", "--tenant", "424242"], "unknown tenant 424242"),
    (["run", "sla-check", "--tenant", "0"], "0 is not in the range"),
    (["run", "sla-check", "--tenant", "1; DROP TABLE x"], "is not a valid integer"),
    (["run", "sla-check", "--reason", "x" * 1001], "at most 1000"),
    (["history", "nope"], "unknown job 'nope'"),
    (["history", INJECTION], "unknown job"),
    (["history", "sla-check", "--limit", "0"], "0 is not in the range"),
    (["history", "sla-check", "--status", "exploded"], "'exploded' is not one of"),
    (["pause", "nope"], "unknown job 'nope'"),
    (["resume", INJECTION], "unknown job"),
    (["reschedule", "nope", "* * * * *"], "unknown job 'nope'"),
    (["reschedule", "sla-check", "*/15 * * * * *"], "it has 6 fields, not 5"),
    (["reschedule", "sla-check", "61 * * * *"], "out of range 0-59"),
    (["reschedule", "sla-check", ""], "it has 0 fields, not 5"),
    (["reschedule", "sla-check", "@hourly"], "only digits, *, /, -, commas and single spaces"),
    (["reschedule", "sla-check", "0 0 31 2 *"], "it never fires"),
    (["reschedule", "sla-check", "*/5 * * * *\n"], "no tab or line break"),
    (["reschedule", "sla-check", "* 24 * * *"], "out of range 0-23"),
    (["reschedule", "sla-check", "* * 0 * *"], "out of range 1-31"),
    (["reschedule", "sla-check", "* * * 13 *"], "out of range 1-12"),
    (["reschedule", "sla-check", "* * * * 8"], "out of range 0-7"),
    (["reschedule", "sla-check", "*/0 * * * *"], "out of range"),
    (["reschedule", "sla-check", "5-1 * * * *"], "out of range"),
    (["reschedule", "sla-check", INJECTION], "invalid schedule"),
    (["config", "set", "nope", "1"], "unknown setting 'nope'"),
    (["config", "set", INJECTION, "1"], "unknown setting"),
    (["config", "set", "smtp.port", "0"], "a whole number from 1 to 65535"),
    (["config", "set", "smtp.port", "65536"], "a whole number from 1 to 65535"),
    (["config", "set", "smtp.port", INJECTION], "a whole number from 1 to 65535"),
    (["config", "set", "ops.timezone", "IST"], "IANA time zone"),
    (["config", "set", "ops.timezone", INJECTION], "IANA time zone"),
    (["config", "set", "dispatch.run_seconds", "0"], "a whole number from 5 to 3000"),
    (["config", "set", "dispatch.per_firm_limit", "lots"], "a whole number from 0 to 100000"),
    (["config", "set", "smtp.tls", "ssl"], "none, starttls or tls"),
    (["config", "set", "smtp.from", "not an address"], "is not an email address"),
    (["config", "set", "ops.email", INJECTION], "is not an email address"),
    (["config", "set", "whatsapp.url", "javascript:alert(1)"], "it must be an https:// URL"),
    (["config", "set", "smtp.timeout_seconds", "999999999"], "a whole number from 1 to 300"),
    (["config", "set", "smtp.port"], "has no value"),
    (["config", "set", "smtp.host", "x" * 3000], "0 to 2000 characters"),
    (["config", "get", "nope"], "unknown setting 'nope'"),
    (["outbox", "retry", "424242"], "no notification 424242"),
    (["outbox", "show", "424242"], "no notification 424242"),
    (["outbox", "--status", "lost"], "'lost' is not one of"),
    (["list", "--tz", "Mars/Olympus"], "unknown time zone"),
]

SQL_CASES: list[tuple[str, str, str]] = [
    ("CALL gstjobs.run_job('nope')", "42704", "unknown job"),
    (
        "CALL gstjobs.run_job('sla-check', as_of => now() + interval '1 minute')",
        "22023",
        "in the future",
    ),
    ("CALL gstjobs.run_job('sla-check', tenant_id => -1)", "22023", "unknown tenant"),
    ("SELECT gstjobs.reschedule('sla-check', '* * * * * *')", "22023", "invalid schedule"),
    (
        "SELECT gstjobs.set_setting('dispatch.run_seconds', '-1')",
        "22023",
        "a whole number from 5",
    ),
    ("SELECT gstjobs.retry_notification(1)", "42704", "no notification"),
    (
        "SELECT gstjobs.job_sla_check(1, now(), NULL, false)",
        "42501",
        "permission denied for function",
    ),
    ("SELECT gstjobs.run_batch(1)", "42501", "only through CALL gstjobs.run_job"),
    (
        """SELECT gstjobs.define_deadline_rule('{"key": "appeal-107", "perod": 2}')""",
        "22023",
        "unknown field(s) 'perod'",
    ),
    ("SELECT gstjobs.define_deadline_rule('[1]')", "22023", "a rule is a JSON object"),
    (
        """SELECT gstjobs.define_deadline_rule('{"key": "appeal-107", "period": -3}')""",
        "23514",
        "deadline_rules_period_check",
    ),
    (
        """SELECT gstjobs.define_deadline_rule('{"key": "appeal-107", "trigger_event": "x''); DROP TABLE gstjobs.runs; --"}')""",
        "23503",
        "deadline_rules_trigger_event_fkey",
    ),
    (
        "SELECT gstjobs.set_annual_return_due_date('2024-26', '2026-12-31', 'x')",
        "23514",
        "annual_return_due_dates_financial_year_check",
    ),
]


@pytest.fixture(scope="module")
def database(server: str, admin_role: str) -> Any:
    """One database with the hand-made firm, shared: every case must leave it as it was."""
    from tests.conftest import database as fresh

    with fresh(server) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(FIRM.encode())
            if (
                conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (OPERATOR,)).fetchone()
                is None
            ):
                conn.execute(f"CREATE ROLE {OPERATOR} LOGIN IN ROLE gstjobs_operator")
        yield dsn


@pytest.mark.parametrize(("args", "message"), CLI_CASES, ids=lambda v: str(v)[:40])
def test_cli_refuses_and_changes_nothing(database: str, args: list[str], message: str) -> None:
    before = checksum(database)
    # settings as an administrator, who may change them all: refused for the value alone
    login = ADMIN if args[:2] == ["config", "set"] else OPERATOR
    result = CliRunner().invoke(cli, ["--dsn", database.replace("postgres@", f"{login}@"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert checksum(database) == before


@pytest.mark.parametrize(("statement", "sqlstate", "message"), SQL_CASES, ids=lambda v: str(v)[:40])
def test_sql_api_refuses_and_changes_nothing(
    database: str, statement: str, sqlstate: str, message: str
) -> None:
    before = checksum(database)
    with (
        psycopg.connect(database.replace("postgres@", f"{OPERATOR}@"), autocommit=True) as conn,
        pytest.raises(psycopg.Error) as raised,
    ):
        conn.execute(statement.encode())
    assert raised.value.sqlstate == sqlstate and message in str(raised.value)
    assert checksum(database) == before
