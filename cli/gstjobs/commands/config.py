"""Settings: list, get and set them (SMTP, WhatsApp, retention, zones); secrets never shown."""

import sys
from zoneinfo import ZoneInfo

import click

from gstjobs import ops
from gstjobs.output import render, render_one
from gstjobs.shared import Context, fail, format_option, reason_option, tz_option, with_context


@click.group()
def config() -> None:
    """Settings: SMTP, WhatsApp, retention, time zones. Secrets are never shown.

    \b
    Example:
      gstjobs config set ops.email ops@firm.example.in
    """


@config.command("list")
@format_option
@tz_option
@with_context
def config_list(ctx: Context, fmt: str, tz: str | None) -> None:
    """Every setting with its value, default and meaning (secrets shown as ********).

    \b
    Example:
      gstjobs config list --format json
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        rows = ops.settings(conn)
    if fmt == "table":
        rows = [{k: row[k] for k in ("key", "value", "is_set", "description")} for row in rows]
    click.echo(render(rows, fmt, zone))


@config.command("get")
@click.argument("key")
@format_option
@tz_option
@with_context
def config_get(ctx: Context, key: str, fmt: str, tz: str | None) -> None:
    """One setting.

    \b
    Example:
      gstjobs config get smtp.host
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        row = ops.setting(conn, key)
    if fmt == "table":
        click.echo(row["value"] if row["value"] is not None else "(not set)")
    else:
        click.echo(render_one(row, fmt, zone))


@config.command("set")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY VALUE [KEY VALUE]...")
@reason_option
@format_option
@with_context
def config_set(ctx: Context, pairs: tuple[str, ...], reason: str | None, fmt: str) -> None:
    """Change settings, checked first, all together or none. VALUE '-' reads it from standard
    input (for secrets, which then stay out of the shell history).

    A secret is used only with the endpoint it was set with: to move SMTP to another server,
    set the server and the password in one command.

    \b
    Example:
      gstjobs config set smtp.port 587
      gstjobs config set smtp.host smtp.example.in smtp.tls starttls smtp.password - < pw-file
    """
    if len(pairs) % 2:
        fail(f"{pairs[-1]!r} has no value: give KEY VALUE pairs, e.g. smtp.port 587")
    changes = dict(zip(pairs[::2], pairs[1::2], strict=True))
    if len(changes) < len(pairs) // 2:
        fail("a setting is given twice: give each KEY once")
    stdin_keys = [key for key, value in changes.items() if value == "-"]
    if len(stdin_keys) > 1:
        fail("only one VALUE may be read from standard input ('-')")
    for key in stdin_keys:
        changes[key] = (
            sys.stdin.readline().rstrip("\n")
            if not sys.stdin.isatty()
            else click.prompt(key, hide_input=True)
        )
    with ctx.database() as conn:
        results = ops.change_settings(conn, changes, reason)
    if fmt == "json":
        # one setting: its object, as before; several: a list of them
        utc = ZoneInfo("UTC")
        click.echo(
            render_one(results[0], fmt, utc) if len(results) == 1 else render(results, fmt, utc)
        )
    else:
        for result in results:
            click.echo(f"{result['key']} = {result['value']}")


COMMANDS = (config,)
