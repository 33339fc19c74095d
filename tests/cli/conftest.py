"""The CLI as an operator uses it: a login role that is only a member of gstjobs_operator."""

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from gstjobs.main import cli

OPERATOR = "gstjobs_test_operator"


@pytest.fixture(scope="session")
def operator_role(server: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OPERATOR}') THEN
                    CREATE ROLE {OPERATOR} LOGIN IN ROLE gstjobs_operator;
                END IF;
            END $$"""
        )
    return OPERATOR


def as_operator(dsn: str) -> str:
    return dsn.replace("postgresql://postgres@", f"postgresql://{OPERATOR}@")


Invoke = Callable[..., Result]


@pytest.fixture
def gstjobs(db: str, operator_role: str) -> Invoke:
    """Run a gstjobs command as the operator against the test's database."""
    runner = CliRunner()

    def invoke(*args: str, dsn: str | None = None, input: str | None = None) -> Result:
        target = dsn or as_operator(db)
        return runner.invoke(cli, ["--dsn", target, *args], input=input, catch_exceptions=False)

    return invoke


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
