"""The statutory deadlines (docs/DEADLINES.md): list them, and read and extend the rules they
are computed by (the rules, and the dates the Government notified for them)."""

from datetime import datetime

import click

from gstjobs import ops
from gstjobs.output import render, render_one
from gstjobs.shared import (
    DATE,
    Context,
    echo_json_result,
    fail,
    format_option,
    reason_option,
    tz_option,
    with_context,
)


@click.command()
@click.option("--tenant", "tenant_id", type=click.IntRange(min=1), help="One firm's only.")
@click.option("--case", "case_id", type=click.IntRange(min=1), help="One case's only.")
@click.option(
    "--due-within",
    type=click.IntRange(min=0, max=3660),
    metavar="DAYS",
    help="Safe date no more than DAYS after today (the firm's today); passed ones included.",
)
@click.option("--all", "include_closed", is_flag=True, help="Met, missed and waived ones too.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10000))
@format_option
@tz_option
@with_context
def deadlines(
    ctx: Context,
    tenant_id: int | None,
    case_id: int | None,
    due_within: int | None,
    include_closed: bool,
    limit: int,
    fmt: str,
    tz: str | None,
) -> None:
    """Open deadlines, soonest safe date first: each with its rule, section, event, legal last
    day, safe date, condonable until and origin (computed, overridden, manual). A department's
    limit (binds=department) is a time bar for the firm to use, not a date it must meet.

    \b
    Example:
      gstjobs deadlines --tenant 1 --due-within 14
      gstjobs deadlines --case 42 --all --format json
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        rows = ops.deadlines(conn, tenant_id, case_id, due_within, include_closed, limit)
    if fmt == "table":
        # the basis is a paragraph: --format json shows it
        rows = [{k: v for k, v in row.items() if k not in ("basis", "firm")} for row in rows]
    click.echo(render(rows, fmt, zone, empty="no deadlines"))


@click.group()
def rules() -> None:
    """The statutory rules deadlines are computed by, and the dates the Government notified.

    \b
    Example:
      gstjobs rules list
      gstjobs rules show appeal-112
    """


@rules.command("list")
@format_option
@with_context
def rules_list(ctx: Context, fmt: str) -> None:
    """Every rule: what starts it, its period, who it binds, whether checked (verified_on).

    \b
    Example:
      gstjobs rules list --format csv
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, None)
        rows = ops.rules(conn)
    click.echo(render(rows, fmt, zone))


@rules.command("show")
@click.argument("key")
@format_option
@with_context
def rules_show(ctx: Context, key: str, fmt: str) -> None:
    """One rule, every field, with its notified dates and their citations.

    \b
    Example:
      gstjobs rules show order-limit-73
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, None)
        found = ops.rule(conn, key)
        if found is None:
            keys = ", ".join(r["key"] for r in ops.rules(conn))
            fail(f"unknown rule {key!r}; rules are: {keys}")
    click.echo(render_one(found, fmt, zone))


@rules.command("add-notification")
@click.argument("key")
@click.option("--notification", required=True, help="As the Gazette names it: 'S.O. 4220(E)'.")
@click.option("--notified-on", required=True, type=DATE, help="Its date, YYYY-MM-DD.")
@click.option("--section", required=True, help="The power it was made under: '112(1)', '168A'.")
@click.option("--last-day", required=True, type=DATE, help="The last day it gives.")
@click.option("--for-events-before", type=DATE, help="It covers events before this date.")
@click.option("--for-events-from", type=DATE, help="It covers events on or after this date.")
@click.option("--financial-year", metavar="YYYY-YY", help="It covers this financial year.")
@click.option("--words", required=True, help="Its operative words, quoted.")
@click.option("--source", required=True, help="Where it was published (Gazette number, URL).")
@click.option("--verified-on", type=DATE, help="When someone checked it against the Gazette.")
@reason_option
@format_option
@with_context
def rules_add_notification(
    ctx: Context,
    key: str,
    notification: str,
    notified_on: datetime,
    section: str,
    last_day: datetime,
    for_events_before: datetime | None,
    for_events_from: datetime | None,
    financial_year: str | None,
    words: str,
    source: str,
    verified_on: datetime | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Add a date the Government notified for a rule (a transitional date, an extension): it
    applies to the events it covers where later than the counted last day; the deadlines it
    covers are recomputed at once. Audited.

    \b
    Example:
      gstjobs rules add-notification appeal-112 --notification "S.O. 1234(E)" \\
        --notified-on 2026-06-30 --section "112(1)" --last-day 2026-07-31 \\
        --for-events-before 2026-05-01 --words "the 31st day of July, 2026, ..." \\
        --source "Gazette of India, CG-DL-E-..." --reason "counsel's note 12"
    """
    given = {
        "rule_key": key,
        "notification": notification,
        "notified_on": notified_on,
        "section": section,
        "last_day": last_day,
        "for_events_before": for_events_before,
        "for_events_from": for_events_from,
        "financial_year": financial_year,
        "operative_words": words,
        "source": source,
        "verified_on": verified_on,
    }
    notified = {k: v.date().isoformat() if hasattr(v, "date") else v for k, v in given.items()}
    with ctx.database() as conn:
        result = ops.define_notified_date(
            conn, {k: v for k, v in notified.items() if v is not None}, reason
        )
    if not echo_json_result(result, fmt):
        click.echo(
            f"notified date {result['id']} added to {key}: {result['last_day']} "
            f"({result['notification']}); {result['deadlines_recomputed']} deadline(s) recomputed"
        )


COMMANDS = (deadlines, rules)
