"""Deterministic data for demos, tests and benchmarks: `python -m gstjobs.datagen --help`."""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import click
import psycopg

from gstjobs.db import DSN_ENV, connect
from gstjobs.resources import sql_text


@dataclass(frozen=True)
class Size:
    firms: int
    tasks: int
    hearings: int
    deadlines: int
    # the share of tasks still open or in progress (the benchmark's growth series varies it)
    open_share: float = 0.30
    # case events (notices, orders), whose deadlines are computed on top of `deadlines`
    events: int = 0


SIZES = {
    # the replaced system's own load test
    "seed": Size(firms=10, tasks=500, hearings=100, deadlines=200),
    "m": Size(firms=100, tasks=100_000, hearings=10_000, deadlines=20_000, events=2_000),
    "l": Size(firms=1_000, tasks=1_000_000, hearings=100_000, deadlines=200_000, events=20_000),
    # ten times L: the size of a platform serving the country's practices (docs/SCALING.md)
    "xl": Size(
        firms=10_000, tasks=10_000_000, hearings=1_000_000, deadlines=2_000_000, events=200_000
    ),
}


def generate(
    conn: psycopg.Connection[Any], size: Size, *, seed: int = 1, anchor: datetime | None = None
) -> None:
    """Fill the (empty) litigation tables; anchor is the 'now' the data is arranged around."""
    settings = {**asdict(size), "seed": seed}
    with conn.transaction():
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, true)", (f"gstjobs_gen.{name}", str(value)))
        conn.execute(
            "SELECT set_config('gstjobs_gen.anchor', coalesce(%s::timestamptz, now())::text, true)",
            (anchor,),
        )
        conn.execute(sql_text("generate.sql").encode())


@click.command()
@click.option("--dsn", envvar=DSN_ENV, help=f"Target database (default: ${DSN_ENV}, else PG*).")
@click.option("--size", type=click.Choice(sorted(SIZES)), default="seed", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same data.")
@click.option("--anchor", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]), help="'Now' for the data.")
def main(dsn: str | None, size: str, seed: int, anchor: datetime | None) -> None:
    """Generate firms, members, clients, cases, hearings, tasks and deadlines.

    Example: python -m gstjobs.datagen --size seed --anchor 2026-11-28T09:00:00+05:30
    """
    with connect(dsn) as conn:
        generate(conn, SIZES[size], seed=seed, anchor=anchor)
    click.echo(f"generated size {size} ({SIZES[size]}) with seed {seed}")


if __name__ == "__main__":
    main()
