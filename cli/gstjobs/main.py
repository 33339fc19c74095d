"""The gstjobs command: a thin Click front end over the views and functions of schema gstjobs."""

import sys
from collections.abc import Sequence
from typing import Any

import click
import psycopg
from tabulate import tabulate

from gstjobs.db import DSN_ENV, ConnectError, connect
from gstjobs.resources import named_queries

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


def fail(message: str, code: int) -> None:
    click.echo(f"gstjobs: {message}", err=True)
    sys.exit(code)


def open_connection(dsn: str | None) -> psycopg.Connection[Any]:
    try:
        conn = connect(dsn)
    except ConnectError as error:
        fail(str(error), EXIT_UNREACHABLE)
        raise  # unreachable: fail() exits
    installed = conn.execute("SELECT to_regclass('gstjobs.job_overview') IS NOT NULL").fetchone()
    if not installed or not installed[0]:
        conn.close()
        fail(
            "gstjobs is not installed in this database: run `alembic upgrade head` "
            f"with {DSN_ENV} pointing at it",
            EXIT_UNREACHABLE,
        )
    return conn


def render(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        import json

        return json.dumps(list(rows), default=str, indent=2)
    if fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    return tabulate(rows, headers="keys") if rows else "(none)"


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)


@click.group()
@click.option(
    "--dsn",
    envvar=DSN_ENV,
    help=f"Database to connect to (default: ${DSN_ENV}, else libpq's PG* variables).",
)
@click.pass_context
def cli(ctx: click.Context, dsn: str | None) -> None:
    """Operate gstjobs: Postgres-native background jobs for GST litigation practices.

    Example: gstjobs --dsn postgresql://postgres@127.0.0.1:54320/gstjobs list
    """
    ctx.obj = dsn


@cli.command("list")
@format_option
@click.pass_obj
def list_jobs(dsn: str | None, fmt: str) -> None:
    """Every job: schedule, active, last run and failures in the last 24 hours.

    Example: gstjobs list --format json
    """
    with open_connection(dsn) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        rows = cur.execute(named_queries("queries.sql")["job-overview"].encode()).fetchall()
    click.echo(render(rows, fmt))
