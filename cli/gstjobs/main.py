"""The gstjobs command: the root group, its --dsn, and the command groups it carries.

A command lives in cli/gstjobs/commands/<group>.py and does its work through gstjobs.ops; a
new group is one module there and one name in GROUPS below. What every command shares (the
connection, the common options, the one error path) is in gstjobs.shared.
"""

import click

from gstjobs.commands import (
    calendar,
    config,
    dashboard,
    deadlines,
    events,
    firm,
    health,
    jobs,
    outbox,
    prefs,
)
from gstjobs.db import DSN_ENV
from gstjobs.shared import Context

GROUPS = (jobs, health, outbox, config, firm, deadlines, events, calendar, prefs, dashboard)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dsn",
    envvar=DSN_ENV,
    metavar="DSN",
    help=f"Database to connect to (default: ${DSN_ENV}, else libpq's PG* variables).",
)
@click.version_option(package_name="gstjobs")
@click.pass_context
def cli(ctx: click.Context, dsn: str | None) -> None:
    """Operate gstjobs: Postgres-native background jobs for GST litigation practices.

    \b
    Example:
      export GSTJOBS_DSN=postgresql://postgres@127.0.0.1:54320/gstjobs
      gstjobs list
    """
    ctx.obj = Context(dsn)


for group in GROUPS:
    for command in group.COMMANDS:
        cli.add_command(command)
