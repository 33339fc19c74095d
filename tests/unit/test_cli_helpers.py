"""The CLI's pure helpers, without a server: reading --as-of, schedules in words and their next
run, what a database error means for the operator, and how values are shown."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import click
import pytest
from gstjobs import ops
from gstjobs.commands.jobs import parse_as_of
from gstjobs.output import human_duration, machine, render, render_one
from gstjobs.shared import EXIT_FAILED, EXIT_USAGE, explain
from psycopg import errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-11-20T08:00:00", "has no UTC offset"),
        ("2999-01-01T00:00:00+05:30", "is in the future"),
    ],
)
def test_a_bad_as_of_is_refused_with_what_to_write(text: str, message: str) -> None:
    with pytest.raises(click.ClickException) as refused:
        parse_as_of(text)
    assert message in refused.value.message and refused.value.exit_code == EXIT_USAGE


def test_an_as_of_with_its_offset_is_the_moment_it_names() -> None:
    moment = parse_as_of("2026-11-20T08:05:00+05:30")
    assert moment == datetime(2026, 11, 20, 2, 35, tzinfo=UTC)
    assert parse_as_of(None) is None


def test_schedules_in_words_and_their_next_run() -> None:
    assert ops.in_words("*/15 * * * *") == "Every 15 minutes (UTC)"
    assert ops.in_words(None) == ""
    now = datetime(2026, 11, 20, 21, 29, 30, tzinfo=UTC)
    assert ops.next_run("30 21 * * *", True, now) == datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    assert ops.next_run("30 21 * * *", False, now) is None  # paused: pg_cron will not start it
    assert ops.next_run(None, True, now) is None


def database_error(kind: type[Exception], primary: str, hint: str | None = None) -> Any:
    """An error of this kind, as psycopg would raise it, with its diagnostics."""
    error = type("Raised", (kind,), {})(primary)
    error.__class__.diag = SimpleNamespace(message_primary=primary, message_hint=hint)  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("kind", "primary", "hint", "said", "code"),
    [
        # an unknown thing: one line, with what there is
        (errors.UndefinedObject, "unknown job 'sla'", "jobs are: a, b", "unknown job 'sla'; jobs are: a, b", EXIT_USAGE),
        # a refused value, its hint on the next line; PL/Python's prefix gone
        (errors.InvalidParameterValue, "plpy.Error: as_of x is in the future", "leave as_of out",
         "as_of x is in the future\nhint: leave as_of out", EXIT_USAGE),
        (errors.CheckViolation, "violates check constraint", None, "violates check constraint", EXIT_USAGE),
        # not allowed: the server's hint, else which role to connect as
        (errors.InsufficientPrivilege, "smtp.host may be changed by members of gstjobs_admin only",
         "GRANT gstjobs_admin", "smtp.host may be changed by members of gstjobs_admin only\nhint: GRANT gstjobs_admin", EXIT_FAILED),
        (errors.InsufficientPrivilege, "permission denied for view outbox", None,
         "permission denied for view outbox\nhint: connect as a member of gstjobs_operator", EXIT_FAILED),
        # anything else is the command's failure
        (errors.DivisionByZero, "division by zero", None, "division by zero", EXIT_FAILED),
    ],
)  # fmt: skip
def test_a_database_error_is_said_once_with_its_exit_code(
    kind: type[Exception], primary: str, hint: str | None, said: str, code: int
) -> None:
    assert explain(database_error(kind, primary, hint)) == (said, code)


def test_values_are_shown_for_people_and_for_programs() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    moment = datetime(2026, 11, 20, 2, 35, tzinfo=UTC)
    assert human_duration(timedelta(seconds=2.5)) == "2.50 s"
    assert human_duration(timedelta(minutes=61, seconds=5)) == "1 h 1 min"
    assert human_duration(None) == ""
    assert machine(moment) == "2026-11-20T02:35:00+00:00"
    assert machine(timedelta(seconds=90, microseconds=4000)) == 90.004  # seconds, to the ms
    assert machine(Decimal("12.50")) == 12.5
    rows = [{"job": "sla-check", "when": moment, "counts": {"found": 2, "sla-breach.tasks": 1}}]
    table = render(rows, "table", zone)
    assert "2026-11-20 08:05 IST" in table and "found=2" in table and "sla-breach" not in table
    assert render(rows, "json", zone).count('"2026-11-20T02:35:00+00:00"') == 1
    assert render(rows, "csv", zone).splitlines()[0] == "job,when,counts"
    assert render([], "table", zone, empty="no runs") == "no runs"
    assert render_one({"a": 1, "b": "two\nlines"}, "table", zone) == "a  1\nb  two\n   lines"
