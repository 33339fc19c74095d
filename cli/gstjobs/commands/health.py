"""How gstjobs is doing: the latest health report (health), and the server's and the
installation's checks (doctor). Both exit 1 when something is wrong."""

from typing import Any
from zoneinfo import ZoneInfo

import click

from gstjobs import ops
from gstjobs.output import human_time, render, render_one
from gstjobs.shared import (
    EXIT_FAILED,
    Context,
    fail,
    format_option,
    reason_option,
    tz_option,
    with_context,
)


@click.command()
@click.option(
    "--run",
    "run_now",
    is_flag=True,
    help="Run health-check now instead of showing the last report.",
)
@format_option
@tz_option
@with_context
def health(ctx: Context, run_now: bool, fmt: str, tz: str | None) -> None:
    """The latest health report, problems first, each with what to do. Exit 1 when unhealthy.

    \b
    Example:
      gstjobs health --run || page-the-on-call-person
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        report = ops.latest_health(conn, run_first=run_now)
    if report is None:
        fail("no health report yet: `gstjobs health --run` makes one", EXIT_FAILED)
    problems = report["problems"]
    if fmt == "json":
        click.echo(render_one(report, fmt, zone))
    elif fmt == "csv":
        click.echo(render(problems, fmt, zone))
    else:
        verdict = "HEALTHY" if report["healthy"] else f"UNHEALTHY: {len(problems)} problem(s)"
        click.echo(f"{verdict} (report {report['id']}, {human_time(report['created_at'], zone)})")
        for problem in problems:
            click.echo(f"\n- {problem['message']}\n  what to do: {problem['advice']}")
        jobs = report["report"].get("jobs", [])
        if jobs:
            click.echo("\n" + render(jobs, "table", zone))
    if not report["healthy"]:
        fail(f"unhealthy: {len(problems)} problem(s), each with what to do above", EXIT_FAILED)


@click.command()
@click.option(
    "--preflight",
    is_flag=True,
    help="Before installing: check that this server and login can take gstjobs "
    "(gstjobs need not be installed).",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Confirm this database as the production one, so that a restored copy sends "
    "(administrators only; audited).",
)
@reason_option
@format_option
@with_context
def doctor(ctx: Context, preflight: bool, adopt: bool, reason: str | None, fmt: str) -> None:
    """Check the server and the installation; say how to fix each failure. Exit 1 on any.

    A database restored onto another server, or under another name, sends nothing until an
    administrator confirms it is production with --adopt.

    \b
    Example:
      gstjobs doctor
      gstjobs --dsn postgresql://postgres@dbhost/lawfirm doctor --preflight
      gstjobs doctor --adopt --reason "moved to the new server, ticket 4711"
    """
    if preflight:
        with ctx.database(installed=False) as conn:
            checks = ops.preflight(conn)
        show_checks(checks, fmt, failing=[c for c in checks if c["blocking"] and not c["ok"]])
        return
    with ctx.database() as conn:
        if adopt:
            adopted = ops.adopt_installation(conn, reason)
            if fmt == "table":
                click.echo(
                    f"{adopted['database']} confirmed as production"
                    + (" (it was a copy: it sends from now on)" if adopted["was_a_copy"] else "")
                    + "\n"
                )
        checks = ops.doctor(conn)
    show_checks(checks, fmt, failing=[c for c in checks if not c["ok"]])


def show_checks(checks: list[dict[str, Any]], fmt: str, failing: list[dict[str, Any]]) -> None:
    """Each check, ok or FAIL with its fix; exit 1 when any of failing failed."""
    failed = failing
    if fmt == "table":
        for check in checks:
            mark = "ok  " if check["ok"] else "FAIL"
            click.echo(f"{mark}  {check['name']}: {check['detail']}")
            if not check["ok"]:
                click.echo(f"      fix: {check['fix']}")
        click.echo(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed")
    else:
        click.echo(render(checks, fmt, ZoneInfo("UTC")))
    if failed:
        fail(f"{len(failed)} of {len(checks)} checks failed, each with its fix", EXIT_FAILED)


COMMANDS = (health, doctor)
