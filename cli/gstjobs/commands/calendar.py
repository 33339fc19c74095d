"""When a firm's forums are closed (docs/DEADLINES.md): a last day on a closed day moves to
the next open day. List a firm's calendars, add or remove holidays, or load the year's
national holidays from the dated file shipped with gstjobs."""

from datetime import datetime

import click

from gstjobs import ops
from gstjobs.output import render
from gstjobs.shared import (
    DATE,
    Context,
    echo_json_result,
    fail,
    format_option,
    reason_option,
    tenant_option,
    with_context,
)

FORUMS = ("proper_officer", "appellate_authority", "tribunal", "high_court")

forum_option = click.option(
    "--forum",
    type=click.Choice(FORUMS),
    help="The forum's own calendar (default: the firm's calendar for every other forum).",
)


@click.group()
def calendar() -> None:
    """A firm's holiday calendars, per forum (audited changes; its deadlines are recomputed).

    \b
    Example:
      gstjobs calendar load --tenant 1 --year 2026
      gstjobs calendar add --tenant 1 --forum tribunal 2026-12-24 "Bench does not sit"
    """


@calendar.command("list")
@tenant_option
@format_option
@with_context
def calendar_list(ctx: Context, tenant_id: int, fmt: str) -> None:
    """A firm's calendars and their holidays. With none, only Sundays are closed.

    \b
    Example:
      gstjobs calendar list --tenant 1
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, None)
        rows = ops.calendars(conn, tenant_id)
    click.echo(render(rows, fmt, zone, empty="no calendar: only Sundays are closed"))


def added(
    ctx: Context,
    tenant_id: int,
    forum: str | None,
    holidays: list[dict[str, str]],
    reason: str | None,
    fmt: str,
) -> None:
    """Add holidays and say what changed."""
    with ctx.database() as conn:
        result = ops.add_holidays(conn, tenant_id, forum, holidays, reason)
    if not echo_json_result(result, fmt):
        click.echo(
            f"{result['added']} holiday(s) added to {result['calendar']} (calendar"
            f" {result['calendar_id']}); {result['already_there']} already there"
        )


@calendar.command("add")
@tenant_option
@forum_option
@click.argument("day", metavar="DATE", type=DATE)
@click.argument("name")
@reason_option
@format_option
@with_context
def calendar_add(
    ctx: Context,
    tenant_id: int,
    forum: str | None,
    day: datetime,
    name: str,
    reason: str | None,
    fmt: str,
) -> None:
    """Add a holiday (the calendar is made if the firm has none for the forum).

    \b
    Example:
      gstjobs calendar add --tenant 1 --forum high_court 2026-11-09 "Diwali (court notice)"
    """
    added(ctx, tenant_id, forum, [{"on": day.date().isoformat(), "name": name}], reason, fmt)


@calendar.command("load")
@tenant_option
@forum_option
@click.option("--year", required=True, type=int, help="The year of the shipped file to load.")
@reason_option
@format_option
@with_context
def calendar_load(
    ctx: Context, tenant_id: int, forum: str | None, year: int, reason: str | None, fmt: str
) -> None:
    """Add the year's holidays of the Central Government's Delhi offices, from the dated file
    shipped with gstjobs (its source is printed; check it against the State's list for a forum
    outside Delhi). Loading twice adds nothing.

    \b
    Example:
      gstjobs calendar load --tenant 1 --forum tribunal --year 2026
    """
    try:
        holidays, source = ops.shipped_holidays(year)
    except FileNotFoundError:
        years = ", ".join(str(y) for y in ops.shipped_holiday_years()) or "none"
        fail(f"no holidays shipped for {year}; shipped: {years}")
    if fmt == "table":
        click.echo(f"source: {source}")
    added(ctx, tenant_id, forum, holidays, reason or f"shipped holidays {year}", fmt)


@calendar.command("remove")
@tenant_option
@forum_option
@click.argument("days", metavar="DATE...", nargs=-1, required=True, type=DATE)
@reason_option
@format_option
@with_context
def calendar_remove(
    ctx: Context,
    tenant_id: int,
    forum: str | None,
    days: tuple[datetime, ...],
    reason: str | None,
    fmt: str,
) -> None:
    """Remove holidays from a firm's calendar for a forum.

    \b
    Example:
      gstjobs calendar remove --tenant 1 --forum tribunal 2026-12-24
    """
    with ctx.database() as conn:
        result = ops.remove_holidays(conn, tenant_id, forum, [d.date() for d in days], reason)
    if not echo_json_result(result, fmt):
        click.echo(f"{result['removed']} holiday(s) removed")


@calendar.command("weekdays")
@tenant_option
@forum_option
@click.argument("weekdays", metavar="DAYS")
@reason_option
@format_option
@with_context
def calendar_weekdays(
    ctx: Context, tenant_id: int, forum: str | None, weekdays: str, reason: str | None, fmt: str
) -> None:
    """Set the weekdays the forum is closed, ISO numbers 1 (Monday) to 7 (Sunday), comma
    separated: "6,7" for a forum closed on Saturdays and Sundays, "7" for Sundays only (the
    default of a new calendar).

    \b
    Example:
      gstjobs calendar weekdays --tenant 1 --forum high_court 6,7 --reason "court closed Saturdays"
    """
    try:
        days = [int(day) for day in weekdays.split(",")]
    except ValueError:
        fail(f"weekdays are numbers 1 (Monday) to 7 (Sunday), comma separated, not {weekdays!r}")
    with ctx.database() as conn:
        result = ops.set_closed_weekdays(conn, tenant_id, forum, days, reason)
    if not echo_json_result(result, fmt):
        click.echo(
            f"{result['calendar']} (calendar {result['calendar_id']}) closed on weekdays"
            f" {result['closed_weekdays']} (was {result['old']})"
        )


COMMANDS = (calendar,)
