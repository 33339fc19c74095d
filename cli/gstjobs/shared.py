"""What every command of the CLI shares: the connection and display zone, the common options,
and the one way out with an error (a message for a person and an exit code, never a
traceback for a foreseeable mistake)."""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import psycopg
from psycopg import errors
from psycopg.rows import dict_row

from gstjobs import ops
from gstjobs.db import DSN_ENV, ConnectError, connect
from gstjobs.output import FORMATS, render_one

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3

# The database owns validation and says what was wrong by its condition: these are a refused
# request (bad input, nothing changed: exit 2); any other error is the command's failure (1).
REFUSALS: tuple[type[psycopg.Error], ...] = (
    errors.UndefinedObject,  # unknown job, setting, tenant or notification
    errors.InvalidParameterValue,  # a bad value, a future as_of, a schedule that never fires
    errors.StringDataRightTruncation,  # text too long
    errors.ObjectNotInPrerequisiteState,  # a notification not dead, a job not scheduled
    errors.InvalidTextRepresentation,
    errors.InvalidDatetimeFormat,
    errors.DatetimeFieldOverflow,
    errors.CheckViolation,
    errors.DuplicateObject,  # a firm of that name exists
)

F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """A foreseeable failure: a message for a person and an exit code, no traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"gstjobs: {self.message}", err=True)


def fail(message: str, exit_code: int = EXIT_USAGE) -> NoReturn:
    raise Failure(message, exit_code)


def explain(error: psycopg.Error) -> tuple[str, int]:
    """What a database error means for the operator, and the exit code."""
    diag = error.diag
    text = diag.message_primary or str(error).strip().splitlines()[0]
    text = text.removeprefix("plpy.Error: ")
    hint = diag.message_hint
    if isinstance(error, errors.UndefinedObject) and hint:
        # the hint lists what there is: one line, 'unknown job 'x'; jobs are: ...'
        return f"{text}; {hint}", EXIT_USAGE
    if hint:
        text += f"\nhint: {hint}"
    if isinstance(error, errors.InsufficientPrivilege):
        if not hint:
            text += "\nhint: connect as a member of gstjobs_operator"
        return text, EXIT_FAILED
    return text, EXIT_USAGE if isinstance(error, REFUSALS) else EXIT_FAILED


class Context:
    """What every command needs: the DSN, and from it a connection and the display zone."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn

    @contextmanager
    def database(self, installed: bool = True) -> Iterator[ops.Connection]:
        """A connection to an installed gstjobs (or, installed=False, to any database), each
        database error explained on the way out."""
        try:
            raw = connect(self.dsn, autocommit=True)
        except ConnectError as error:
            fail(str(error), EXIT_UNREACHABLE)
        conn: ops.Connection = raw
        conn.row_factory = dict_row
        with conn:
            if not installed:
                try:
                    yield conn
                except psycopg.Error as error:
                    message, code = explain(error)
                    fail(message, code)
                return
            try:
                found = conn.execute(
                    "SELECT to_regclass('gstjobs.job_overview') IS NOT NULL AS ok"
                ).fetchone()
            except errors.InsufficientPrivilege:
                fail(
                    f"{conn.info.user} may not use gstjobs: connect as a member of "
                    "gstjobs_operator (GRANT gstjobs_operator TO you)",
                    EXIT_FAILED,
                )
            if not found or not found["ok"]:
                fail(
                    "gstjobs is not installed in this database (or you may not see it): run "
                    f"`alembic upgrade head` with {DSN_ENV} pointing at it",
                    EXIT_UNREACHABLE,
                )
            try:
                yield conn
            except psycopg.Error as error:
                message, code = explain(error)
                fail(message, code)

    def zone(self, conn: ops.Connection, tz: str | None) -> ZoneInfo:
        """The zone to show times in: --tz, else the ops.timezone setting."""
        name = tz or ops.ops_zone(conn)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            fail(f"unknown time zone {name!r}: use an IANA name such as Asia/Kolkata or UTC")


# a calendar date as the commands take it
DATE = click.DateTime(formats=["%Y-%m-%d"])


def tenant_option(func: F) -> F:
    return click.option(
        "--tenant", "tenant_id", required=True, type=click.IntRange(min=1), help="The firm."
    )(func)


def format_option(func: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json or csv for programs (fields in docs/CLI.md).",
    )(func)


def tz_option(func: F) -> F:
    return click.option(
        "--tz",
        metavar="ZONE",
        help="Show times in this IANA zone (default: the ops.timezone setting).",
    )(func)


def reason_option(func: F) -> F:
    return click.option(
        "--reason", metavar="TEXT", help="Why; kept in the audit log (at most 1000 characters)."
    )(func)


def with_context(func: F) -> F:
    """The command receives the Context first."""

    @click.pass_obj
    @functools.wraps(func)
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        return func(ctx, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def echo_json_result(result: dict[str, Any], fmt: str) -> bool:
    """The database's answer to a change, shown as JSON when --format json asked for it;
    whether it was shown (else the command says it in words)."""
    if fmt == "json":
        click.echo(render_one(result, fmt, ZoneInfo("UTC")))
    return fmt == "json"
