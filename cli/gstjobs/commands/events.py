"""What happened on a firm's cases (docs/DEADLINES.md): record an event, correct it, remove it;
the deadlines it gives are computed by the database as for any write of the firm's."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from gstjobs import ops
from gstjobs.output import render, render_one
from gstjobs.shared import (
    DATE,
    Context,
    fail,
    format_option,
    reason_option,
    tenant_option,
    tz_option,
    with_context,
)

UTC = ZoneInfo("UTC")  # what these commands show are dates, not times


@click.group()
def events() -> None:
    """A firm's case events: notices served, orders communicated, ... (audited changes).

    \b
    Example:
      gstjobs events add --tenant 1 --case 42 order_communicated 2026-08-31
      gstjobs events list --tenant 1 --case 42
    """


@events.command("list")
@tenant_option
@click.option("--case", "case_id", type=click.IntRange(min=1), help="One case's only.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10000))
@format_option
@tz_option
@with_context
def events_list(
    ctx: Context, tenant_id: int, case_id: int | None, limit: int, fmt: str, tz: str | None
) -> None:
    """A firm's events, newest first, with how many deadlines each gave and what could not be
    computed (unresolved: a missing financial year, a section that does not reach the year).

    \b
    Example:
      gstjobs events list --tenant 1 --format json
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        rows = ops.events(conn, tenant_id, case_id, limit)
    click.echo(render(rows, fmt, zone, empty="no events"))


def show_outcome(result: dict[str, Any], fmt: str) -> None:
    """An event and the deadlines it gave: one record (json), or the event's fields and then a
    table of its deadlines."""
    if fmt != "table":
        click.echo(render_one(result, fmt, UTC))
        return
    deadlines = result.pop("deadlines")
    click.echo(render_one(result, fmt, UTC))
    click.echo("")
    click.echo(render(deadlines, fmt, UTC, empty="no deadlines"))


@events.command("add")
@tenant_option
@click.option("--case", "case_id", required=True, type=click.IntRange(min=1), help="The case.")
@click.argument("kind")
@click.argument("event_on", metavar="DATE", type=DATE)
@click.option("--document", "document_ref", help="DIN, reference number or file name.")
@click.option(
    "--notice-days",
    "notice_period_days",
    type=click.IntRange(1, 365),
    help="The period the notice itself gives to reply.",
)
@click.option("--financial-year", metavar="YYYY-YY", help="The year the tax relates to.")
@reason_option
@format_option
@with_context
def events_add(
    ctx: Context,
    tenant_id: int,
    case_id: int,
    kind: str,
    event_on: datetime,
    document_ref: str | None,
    notice_period_days: int | None,
    financial_year: str | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Record that KIND happened on DATE; prints the deadlines it gives. An unknown kind is
    refused with the list of kinds.

    \b
    Example:
      gstjobs events add --tenant 1 --case 42 scn_73_issued 2024-02-15 \\
        --financial-year 2018-19 --document "DIN 2024021512"
    """
    with ctx.database() as conn:
        result = ops.record_event(
            conn,
            tenant_id,
            case_id,
            kind,
            event_on.date(),
            document_ref,
            notice_period_days,
            financial_year,
            reason,
        )
    show_outcome(result, fmt)


@events.command("correct")
@tenant_option
@click.argument("event_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--date", "event_on", type=DATE, help="The event's right date.")
@click.option("--kind", help="The event's right kind.")
@click.option("--case", "case_id", type=click.IntRange(min=1), help="The right case.")
@click.option("--document", "document_ref", help="The right document reference.")
@click.option("--notice-days", "notice_period_days", type=click.IntRange(1, 365))
@click.option("--financial-year", metavar="YYYY-YY")
@reason_option
@format_option
@with_context
def events_correct(
    ctx: Context,
    tenant_id: int,
    event_id: int,
    event_on: datetime | None,
    kind: str | None,
    case_id: int | None,
    document_ref: str | None,
    notice_period_days: int | None,
    financial_year: str | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Correct an event: its deadlines follow (those a person set or closed stay as they are).

    \b
    Example:
      gstjobs events correct --tenant 1 17 --date 2026-09-10 --reason "served later"
    """
    changes = {
        "event_on": event_on.date().isoformat() if event_on else None,
        "kind": kind,
        "case_id": case_id,
        "document_ref": document_ref,
        "notice_period_days": notice_period_days,
        "financial_year": financial_year,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        fail(
            "nothing to correct: give --date, --kind, --case, --document, --notice-days or"
            " --financial-year"
        )
    with ctx.database() as conn:
        result = ops.correct_event(conn, tenant_id, event_id, changes, reason)
    show_outcome(result, fmt)


@events.command("remove")
@tenant_option
@click.argument("event_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--reason", required=True, metavar="TEXT", help="Why; kept in the audit log.")
@format_option
@with_context
def events_remove(ctx: Context, tenant_id: int, event_id: int, reason: str, fmt: str) -> None:
    """Remove an event recorded in error; its computed deadlines go with it (those a person
    took over stay, no longer linked).

    \b
    Example:
      gstjobs events remove --tenant 1 17 --reason "recorded on the wrong case"
    """
    with ctx.database() as conn:
        result = ops.remove_event(conn, tenant_id, event_id, reason)
    if fmt == "json":
        click.echo(render_one(result, fmt, UTC))
    else:
        click.echo(
            f"event {event_id} removed; {result['deadlines_kept']} deadline(s) a person had"
            " taken over kept"
        )


COMMANDS = (events,)
