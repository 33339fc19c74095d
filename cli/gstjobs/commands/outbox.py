"""The outbox: notifications waiting, sent, failed, dead, suppressed or digested; one of them;
a retry."""

import click

from gstjobs import ops
from gstjobs.output import render, render_one
from gstjobs.shared import (
    Context,
    echo_json_result,
    fail,
    format_option,
    reason_option,
    tz_option,
    with_context,
)

OUTBOX_STATUSES = ("pending", "sent", "failed", "dead", "suppressed", "digested")
# what a table shows of a notification; --format json and csv have every field
TABLE_FIELDS = (
    "id",
    "tenant_id",
    "kind",
    "channel",
    "recipient",
    "status",
    "attempts",
    "next_attempt_at",
    "sent_at",
)


@click.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(OUTBOX_STATUSES))
@click.option("--tenant", type=click.IntRange(min=1), help="Only this firm (its id).")
@click.option("--kind", help="Only this kind, e.g. hearing-reminder.")
@click.option("--limit", type=click.IntRange(min=1, max=10000), default=20, show_default=True)
@format_option
@tz_option
@click.pass_context
def outbox(
    click_ctx: click.Context,
    status: str | None,
    tenant: int | None,
    kind: str | None,
    limit: int,
    fmt: str,
    tz: str | None,
) -> None:
    """Notifications waiting, sent, failed, dead, suppressed (never sent: the recipient
    opted out of the channel) or digested (gathered into a digest email), newest first. A
    table shows one a dispatch run is sending now as "sending (run N)".

    \b
    Example:
      gstjobs outbox --status dead
      gstjobs outbox show 42
      gstjobs outbox retry 42 --reason "mailbox fixed"
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Context = click_ctx.obj
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        rows = ops.outbox(conn, status=status, tenant_id=tenant, kind=kind, limit=limit)
    if fmt == "table":
        rows = [
            {k: row[k] for k in TABLE_FIELDS}
            | {"status": shown_status(row), "subject": (row["subject"] or "")[:60]}
            for row in rows
        ]
    click.echo(render(rows, fmt, zone, empty="no notifications"))


def shown_status(row: dict[str, object]) -> object:
    """A claimed message is being sent now: its status says pending (or failed) until the
    provider answers, which a table would show as waiting."""
    if row.get("sending_run") is not None:
        return f"sending (run {row['sending_run']})"
    return row["status"]


@outbox.command("show")
@click.argument("notification_id", metavar="ID", type=click.IntRange(min=1))
@format_option
@tz_option
@with_context
def outbox_show(ctx: Context, notification_id: int, fmt: str, tz: str | None) -> None:
    """One notification, with its body and delivery state.

    \b
    Example:
      gstjobs outbox show 42 --format json
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        row = ops.notification(conn, notification_id)
    if row is None:
        fail(f"no notification {notification_id}")
    click.echo(render_one(row, fmt, zone))


@outbox.command("retry")
@click.argument("notification_id", metavar="ID", type=click.IntRange(min=1))
@reason_option
@format_option
@with_context
def outbox_retry(ctx: Context, notification_id: int, reason: str | None, fmt: str) -> None:
    """Re-queue a dead or failed notification with a fresh set of attempts (audited).

    \b
    Example:
      gstjobs outbox retry 42 --reason "client's mailbox fixed"
    """
    with ctx.database() as conn:
        result = ops.retry_notification(conn, notification_id, reason)
    if not echo_json_result(result, fmt):
        click.echo(f"notification {notification_id}: {result['old_status']} -> pending")


COMMANDS = (outbox,)
