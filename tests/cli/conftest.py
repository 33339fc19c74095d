"""The CLI as an operator uses it: a login role that is only a member of gstjobs_operator."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result
from gstjobs.main import cli

from tests.conftest import as_operator
from tests.integration.conftest import firm  # noqa: F401  (the job scenarios' two firms)

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
