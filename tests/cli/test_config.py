"""config list, get and set through Click, as an operator and as an administrator."""

import json
from typing import Any

import psycopg
import pytest

from tests.cli.conftest import Invoke
from tests.conftest import ADMIN, OPERATOR, as_login


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, job, details, reason FROM gstjobs.audit_log ORDER BY id"
    ).fetchall()


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
        ("dispatch.run_seconds", "0", "a whole number from 5 to 3000"),
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
