"""The firms: list them, add one, disable or enable one (provisioners; docs/INTEGRATION.md)."""

import click

from gstjobs import ops
from gstjobs.output import render
from gstjobs.shared import (
    Context,
    echo_json_result,
    format_option,
    reason_option,
    tz_option,
    with_context,
)


@click.group()
def firm() -> None:
    """The firms gstjobs works for: add, list, disable, enable (members of gstjobs_provisioner).

    \b
    Example:
      gstjobs firm add "Mehta & Associates" --timezone Asia/Kolkata --whatsapp
      gstjobs firm disable 42 --reason "contract ended"
    """


@firm.command("list")
@format_option
@tz_option
@with_context
def firm_list(ctx: Context, fmt: str, tz: str | None) -> None:
    """Every firm: its zone, whether disabled, its active members and open cases.

    \b
    Example:
      gstjobs firm list --format json
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        rows = ops.firms(conn)
    click.echo(render(rows, fmt, zone, empty="no firms yet: gstjobs firm add NAME"))


@firm.command("add")
@click.argument("name")
@click.option("--timezone", default="Asia/Kolkata", show_default=True, help="IANA zone.")
@click.option("--whatsapp", is_flag=True, help="Send WhatsApp messages to its members too.")
@click.option("--email-from", metavar="ADDRESS", help="The firm's own From (else smtp.from).")
@click.option("--reply-to", metavar="ADDRESS", help="The firm's own Reply-To.")
@reason_option
@format_option
@with_context
def firm_add(
    ctx: Context,
    name: str,
    timezone: str,
    whatsapp: bool,
    email_from: str | None,
    reply_to: str | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Add a firm; prints its id, which the firm application sets as app.tenant_id.

    \b
    Example:
      gstjobs firm add "Mehta & Associates" --timezone Asia/Kolkata --whatsapp
    """
    with ctx.database() as conn:
        result = ops.add_firm(conn, name, timezone, whatsapp, email_from, reply_to, reason)
    if not echo_json_result(result, fmt):
        click.echo(f"firm {result['id']} added: {result['name']} ({result['timezone']})")


def set_disabled(ctx: Context, firm_id: int, disabled: bool, reason: str | None, fmt: str) -> None:
    with ctx.database() as conn:
        result = ops.set_firm_disabled(conn, firm_id, disabled, reason)
    if not echo_json_result(result, fmt):
        state = "disabled" if disabled else "enabled"
        click.echo(
            f"firm {firm_id} {state}" if result["changed"] else f"firm {firm_id} was {state}"
        )


@firm.command("disable")
@click.argument("firm_id", metavar="ID", type=click.IntRange(min=1))
@reason_option
@format_option
@with_context
def firm_disable(ctx: Context, firm_id: int, reason: str | None, fmt: str) -> None:
    """Disable a firm: no job does new work for it; its data stays.

    \b
    Example:
      gstjobs firm disable 42 --reason "contract ended"
    """
    set_disabled(ctx, firm_id, True, reason, fmt)


@firm.command("enable")
@click.argument("firm_id", metavar="ID", type=click.IntRange(min=1))
@reason_option
@format_option
@with_context
def firm_enable(ctx: Context, firm_id: int, reason: str | None, fmt: str) -> None:
    """Enable a disabled firm again.

    \b
    Example:
      gstjobs firm enable 42
    """
    set_disabled(ctx, firm_id, False, reason, fmt)


COMMANDS = (firm,)
