"""The operators' web page: `gstjobs dashboard`."""

import ipaddress
import socket

import click

from gstjobs.shared import EXIT_USAGE, Context, fail, with_context

TOKEN_ENV = "GSTJOBS_DASHBOARD_TOKEN"
# an access token shorter than this is refused: it would be guessed
SHORTEST_TOKEN = 16


def loopback(host: str) -> bool:
    """Whether every address host names is a loopback one."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        fail(f"cannot resolve --host {host!r}", EXIT_USAGE)
    return all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port."
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    help=f"Access token the page asks for (default: ${TOKEN_ENV}); required on any address "
    "but loopback.",
)
@with_context
def dashboard(ctx: Context, host: str, port: int, token: str | None) -> None:
    """Serve the operators' web page: jobs, runs, the outbox, health; Run, Pause, Resume,
    Cancel and Retry, each audited with a reason.

    It connects with this command's DSN for every request, so the database role decides what
    the page may see and do. Ctrl-C stops it.

    \b
    Example:
      gstjobs dashboard                      # http://127.0.0.1:8080/
      GSTJOBS_DASHBOARD_TOKEN=$(openssl rand -hex 16) gstjobs dashboard --host 0.0.0.0
    """
    if token is not None and len(token) < SHORTEST_TOKEN:
        fail(f"the access token must be at least {SHORTEST_TOKEN} characters long", EXIT_USAGE)
    if token is None and not loopback(host):
        fail(
            f"--host {host} is reachable from other machines: set an access token "
            f"(--token or ${TOKEN_ENV}), and put TLS in front of it (a reverse proxy)",
            EXIT_USAGE,
        )
    # the package's own modules are imported only for this command: the rest of the CLI
    # starts without Flask
    from waitress import serve

    from gstjobs.dashboard import create_app

    with ctx.database(installed=False):
        # the database answers: say so now, not on the first page (what the login may see
        # is the page's to say, with the database's words)
        pass
    click.echo(f"gstjobs dashboard on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(create_app(ctx.dsn, token), host=host, port=port, threads=4, ident="gstjobs")


COMMANDS = (dashboard,)
