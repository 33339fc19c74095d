"""The plans of the jobs' hot statements, as make bench measures them, printed as Markdown.

    .venv/bin/python bench/plans.py [--size l|seed|tiny] > plans.md

Sets up the bench cluster's database as make bench does (bench.run.prepare: the generator, the
run and snapshot history, the backlog run), then runs each statement under EXPLAIN (ANALYZE,
BUFFERS) at the moment the bench replays, in a transaction that is rolled back, planned as the
jobs plan them (join_collapse_limit = 1), with no run id (nothing it writes is kept).
docs/BENCHMARKS.md shows the output for L.
"""

import argparse
import contextlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gstjobs.resources import load_plpy_module  # noqa: E402

from bench import run as bench  # noqa: E402

dispatch = load_plpy_module("dispatch")
health_check = load_plpy_module("health_check")


def statements(base: datetime) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(title, statement, parameters) of each hot statement, at the bench's moments."""
    cases = bench.cases(base)
    found: list[tuple[str, str, tuple[Any, ...]]] = [
        (
            f"sla-check, {name} (ten minutes of new breaches)",
            sql,
            (None, cases["sla-check"].as_of, None, bench.SLA_BATCH, *bench.EVERY_FIRM),
        )
        for name, sql in bench.sla_check.statements()
    ]
    for job in ("hearing-reminders", "deadline-alerts", "analytics-snapshot"):
        sql = getattr(bench.local_jobs, job.replace("-", "_").upper())
        found.append((job, sql, (None, cases[job].as_of, None, *bench.EVERY_FIRM)))
    # a claim of dispatch as a run at full pace makes it (two per SMTP connection: 32), on the
    # outbox the backlog run filled (the run id is one no run has: it is rolled back anyway)
    found.append(
        (
            "dispatch-notifications, a claim",
            dispatch.CLAIM,
            (datetime.now(UTC), datetime.now(UTC), "email", None, [], 32, 0),
        )
    )
    now = cases["health-check"].as_of
    found.append(
        (
            "health-check, the jobs and their runs",
            health_check.JOBS,
            (now - timedelta(hours=24), now - timedelta(minutes=2), now),
        )
    )
    return found


def explain(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> str:
    """The plan of sql with its $n parameters bound, its effects rolled back."""
    rows = bench.explained(conn, "ANALYZE, BUFFERS, COSTS OFF", sql, params)
    return "\n".join(row[0] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(bench.BENCH_SIZES), default="l")
    args = parser.parse_args()
    # the set-up's progress goes to stderr: stdout is the Markdown
    with contextlib.redirect_stdout(sys.stderr):
        base, _ = bench.prepare(args.size)
    with psycopg.connect(bench.DSN, autocommit=True) as conn:
        for title, sql, params in statements(base):
            print(f"## {title}\n\n```\n{explain(conn, sql, params)}\n```\n")


if __name__ == "__main__":
    main()
