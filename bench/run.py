"""make bench: each job against the bare-SQL limit and the replaced fetch-and-loop client.

    .venv/bin/python bench/run.py [--size tiny|seed|m|l|xl ...] [--only JOB] [--repeat 5]

Sets up its own cluster (scripts/cluster.sh bench, port 54322), generates the data with the
shared generator, and for each job measures, from the same starting state each time:
  job       CALL gstjobs.run_job(...), exactly as pg_cron calls it
  limit     the job's own set-based statements, run bare in a new session (no ledger, lock or
            PL/Python), planned as the job plans them
  replaced  a psycopg client fetching rows and inserting notifications one at a time, each
            statement its own transaction, as the old edge functions' PostgREST requests were
  replaced_1tx  the same client in one transaction (the most favourable case for it)
  replaced_net  the same client, a statement per transaction, through a proxy on loopback
            that delays each round trip by NETWORK_RTT_MS (0.5 ms; ~0.75 ms as measured before
            the runs), as the network between the old edge functions and the database did
            (loopback alone: ~0.05 ms a round trip)
health-check is measured as the job only, against the replaced system's own time.
The effects of all ways are compared (a digest of the notifications and state they leave),
not assumed, and the shared buffers each job's statements touch are counted (the work itself,
whatever the machine's load). Medians of --repeat runs (at xl one run, and of the replaced
ways only `replaced`); results go to bench/results.json (see docs/BENCHMARKS.md).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gstjobs.datagen import SIZES, Size, generate  # noqa: E402
from gstjobs.resources import load_plpy_module  # noqa: E402

# the jobs' own statements, for the bare-SQL limit
sla_check = load_plpy_module("sla_check")
local_jobs = load_plpy_module("local_jobs")
# the range of firm ids the jobs' firm-scoped statements take last: all of them, as a run
# covers unless a failure is being narrowed down to its firm
EVERY_FIRM = sla_check.ALL_FIRMS

from bench import database, peak, replaced  # noqa: E402
from bench.network import DelayProxy  # noqa: E402

BENCH_SIZES = {"tiny": Size(firms=3, tasks=300, hearings=60, deadlines=60), **SIZES}
PORT = int(os.environ.get("GSTJOBS_BENCH_PORT", "54322"))
CLUSTER = os.environ.get("GSTJOBS_BENCH_CLUSTER", "bench")
DB = "gstjobs_bench"
ADMIN = f"postgresql://postgres@127.0.0.1:{PORT}/postgres"
DSN = f"postgresql://postgres@127.0.0.1:{PORT}/{DB}"
JOBS = ("sla-check", "hearing-reminders", "deadline-alerts", "analytics-snapshot", "health-check")

# The delay bench/network.py adds to each round trip of replaced_net: the old edge functions
# reached the database over a network, one request per statement; the job and the limit run
# inside the database and make none. Hosts in one cloud zone measure 0.2-1 ms; the delay
# actually added is measured before the runs (results' "network").
NETWORK_RTT_MS = 0.5

# the replaced system's own figures (docs: background-jobs-report.md), in seconds
REPLACED_REPORTED = {
    "sla-check": 4.8,
    "hearing-reminders": 6.8,
    "deadline-alerts": 4.1,
    "analytics-snapshot": 18.2,
    "health-check": 3.5,
}


# sla-check's batch (the default of setting sla.batch_size), for the statements run bare
SLA_BATCH = 1000


def anchor() -> datetime:
    """The data's 'now': two days ago, 02:35 UTC (08:05 in India)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2) + timedelta(hours=2, minutes=35)


# Days of run history, as a network in production keeps 90 (purge-history's retention): every
# job's pg_cron runs at its schedule, each in the ledger, one in 997 failed. For 90 days, 423,000
# rows each in cron.job_run_details and gstjobs.runs, which health-check and every run's start read.
HISTORY = """
WITH ticks AS (
    SELECT c.jobid, c.jobname, c.username, c.command, at
    FROM cron.job AS c
    CROSS JOIN LATERAL generate_series(
        date_trunc('minute', now()) - %(days)s * interval '1 day', now() - interval '1 minute',
        CASE WHEN c.schedule LIKE '* %%' THEN interval '1 minute'
             WHEN c.schedule LIKE '*/15 %%' THEN interval '15 minutes'
             ELSE interval '1 day' END) AS at
    WHERE c.username = 'gstjobs_runner'
),
details AS (
    INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status,
                                      return_message, start_time, end_time)
    SELECT jobid, 4242, current_database(), username, command,
           CASE WHEN extract(epoch FROM at)::bigint / 60 %% 997 = 0 THEN 'failed' ELSE 'succeeded' END,
           'CALL', at, at + interval '40 milliseconds'
    FROM ticks
    RETURNING runid, jobid, status, start_time, end_time
)
INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, finished_at, error, cron_jobid,
                          cron_runid, backend_pid)
SELECT c.jobname, 'cron', d.start_time, CASE WHEN d.status = 'failed' THEN 'failed' ELSE 'succeeded' END,
       d.start_time, d.end_time, CASE WHEN d.status = 'failed' THEN 'division by zero' END,
       d.jobid, d.runid, 4242
FROM details AS d JOIN cron.job AS c USING (jobid)
"""


# 90 days of analytics snapshots, as a network in production keeps them (analytics-snapshot
# reads each firm's trailing 28 days for anomalies): the firms' own figures of the measured day,
# each earlier day within 10% of them, so no figure is an anomaly (3 standard deviations).
# Dated before the measured runs (computed_at), which is how each way's own are told apart.
SNAPSHOT_HISTORY = """
INSERT INTO gstjobs.analytics_snapshots
    (tenant_id, local_date, open_cases_by_stage, demand_in_dispute, hearings_next_7_days,
     open_tasks, overdue_tasks, sla_compliance, deadlines_missed, computed_at)
SELECT s.tenant_id, s.local_date - back, s.open_cases_by_stage, round(s.demand_in_dispute * f, 2),
       round(s.hearings_next_7_days * f), round(s.open_tasks * f), round(s.overdue_tasks * f),
       least(round(s.sla_compliance * f, 4), 1), round(s.deadlines_missed * f),
       %(as_of)s::timestamptz - back * interval '1 day'
FROM gstjobs.analytics_snapshots AS s
CROSS JOIN generate_series(1, %(days)s) AS back
CROSS JOIN LATERAL (
    SELECT 0.9 + (abs(hashtext(s.tenant_id || ':' || back)) %% 201) / 1000.0 AS f) AS noise
"""
SNAPSHOT_DAYS = 90

# Days of run history by size: L is a network in production, with 90 days of it (and of
# snapshots); tiny has some, for the harness's test; seed is the replaced system's own load
# test, on a fresh install.
HISTORY_DAYS = {"l": 90, "xl": 90, "tiny": 2}


def snapshot_history(base: datetime) -> int:
    """analytics-snapshot's history: its run at the measured moment, copied to the days before,
    then that run's own snapshots and slots removed (each measured way writes them again).
    Returns the number of snapshots in the history."""
    as_of = cases(base)["analytics-snapshot"].as_of
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("CALL gstjobs.run_job('analytics-snapshot', as_of => %s)", (as_of,))
        written = conn.execute(
            SNAPSHOT_HISTORY.encode(), {"as_of": as_of, "days": SNAPSHOT_DAYS}
        ).rowcount
        conn.execute("DELETE FROM gstjobs.analytics_snapshots WHERE computed_at > %s", (as_of,))
        conn.execute("DELETE FROM gstjobs.slots WHERE job = 'analytics-snapshot'")
        conn.execute("VACUUM ANALYZE gstjobs.analytics_snapshots")
        conn.execute("CHECKPOINT")
    return written


def cluster(action: str) -> None:
    """scripts/cluster.sh ACTION on the bench's cluster, pg_cron in the bench's database."""
    env = {**os.environ, "GSTJOBS_PORT": str(PORT), "GSTJOBS_CRON_DB": DB}
    subprocess.run(
        [str(ROOT / "scripts/cluster.sh"), action, CLUSTER],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def setup(size: Size, history_days: int = 0) -> None:
    cluster("start")
    # dropping pg_cron's database also stops its launcher: nothing ticks during the bench
    database.recreate(ADMIN, DB, DSN)
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("UPDATE cron.job SET active = false")
        started = time.perf_counter()
        generate(conn, size, seed=1, anchor=anchor())
        print(f"  generated {size} in {time.perf_counter() - started:.1f} s", flush=True)
        if history_days:
            conn.execute(HISTORY.encode(), {"days": history_days})
        conn.execute("VACUUM ANALYZE")
        # measured from a clean start: no checkpoint of the generated data during the runs
        # (and the first write to each page after one logs the whole page)
        conn.execute("CHECKPOINT")


def digest(conn: psycopg.Connection[Any], mark: int, extra: str = "SELECT ''") -> str:
    """What a way left behind: its notifications (and, via extra, the state it changed). The
    weekly summary (a Monday's deadline-alerts) is gstjobs' own, the replaced system had none:
    not compared."""
    row = conn.execute(
        "SELECT count(*) || ':' || coalesce(md5(string_agg(dedupe_key || recipient || subject"
        " || body, '|' ORDER BY dedupe_key)), '') || ':' || (" + extra + ")"
        " FROM gstjobs.notifications WHERE id > %s AND kind <> 'deadlines-ahead'",
        (mark,),
    ).fetchone()
    assert row is not None
    return str(row[0])


def effects_counts(measured: dict[str, Any]) -> tuple[int, int]:
    """(notifications, the job's own state count) of a way's digest, as digest() writes it."""
    notified, _, state = measured["ways"]["job"]["effects"].split(":")
    return int(notified), int(state)


def memory_mb(pid: int) -> dict[str, float]:
    """A backend's memory after a run: VmHWM (peak resident, the shared buffers it touched
    included) and RssAnon (its own heap: PostgreSQL's memory contexts are freed after a
    statement but glibc keeps most of the heap mapped, so this is close to its peak)."""
    found: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmHWM", "RssAnon"):
                found[key] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return found


def prepared(conn: psycopg.Connection[Any], name: str, types: str, statement: str) -> None:
    conn.execute(f"PREPARE {name}({types}) AS {statement}".encode())


class CountingConnection(psycopg.Connection[Any]):
    """Counts the statements a way sends. Each is one round trip: psycopg sends parse, bind and
    execute in one message and the rows come back in the reply."""

    statements = 0


class CountingCursor(psycopg.Cursor[Any]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        assert isinstance(self.connection, CountingConnection)
        self.connection.statements += 1
        return super().execute(*args, **kwargs)


def execute(conn: psycopg.Connection[Any], sql: str, *args: Any) -> tuple[Any, ...] | None:
    """sql with its arguments bound client-side; its first row, if it returns rows."""
    cursor = psycopg.ClientCursor(conn).execute(sql, args)
    return cursor.fetchone() if cursor.description else None


class Case:
    """One job at one moment: how to run it each way, and how to undo what it did."""

    def __init__(self, job: str, as_of: datetime, reset: str, state: str = "SELECT ''") -> None:
        self.job, self.as_of, self.reset_sql, self.state = job, as_of, reset, state

    def statements(self) -> list[tuple[str, str, str, str]]:
        """The job's statements, as the limit runs them: (prepared name, parameter types, text,
        batch size); none for health-check (measured as the job only, against the replaced
        system's own time: issue 6)."""
        if self.job == "health-check":
            return []
        if self.job == "sla-check":
            return [
                (
                    f"sla{i}",
                    "bigint, timestamptz, bigint, integer, bigint, bigint",
                    statement,
                    f", {SLA_BATCH}",
                )
                for i, (_, statement) in enumerate(sla_check.statements())
            ]
        name = self.job.replace("-", "_")
        return [
            (
                name,
                "bigint, timestamptz, bigint, bigint, bigint",
                getattr(local_jobs, name.upper()),
                "",
            )
        ]

    def ways(self) -> dict[str, Callable[[psycopg.Connection[Any]], None]]:
        job, as_of = self.job, self.as_of
        found: dict[str, Callable[[psycopg.Connection[Any]], None]] = {
            "job": lambda c: c.execute("CALL gstjobs.run_job(%s, as_of => %s)", (job, as_of)),
        }
        statements = self.statements()
        if not statements:
            return found

        def limit(c: psycopg.Connection[Any]) -> None:
            bare(c)
            # a row in the ledger, as the job's run has: what it writes links to it (run_id)
            run = c.execute(LIMIT_RUN, (job, as_of)).fetchone()
            assert run is not None
            for name, types, statement, _ in statements:
                prepared(c, name, types, statement)
            # in batches, as the job's runner calls its body: each committed, and another
            # while a statement took a full batch (sla-check's answer its tasks first; at XL
            # ten minutes of new breaches are several batches)
            while True:
                full = False
                for name, _, _, batch in statements:
                    row = execute(
                        c,
                        f"EXECUTE {name}(%s, %s::timestamptz, NULL{batch}, %s, %s)",
                        run[0],
                        as_of,
                        *EVERY_FIRM,
                    )
                    full = full or bool(batch and row and row[0] >= SLA_BATCH)
                c.commit()
                if not full:
                    break
                bare(c)

        client = {
            "sla-check": replaced.sla_check,
            "hearing-reminders": replaced.hearing_reminders,
            "deadline-alerts": replaced.deadline_alerts,
            "analytics-snapshot": replaced.analytics_snapshot,
        }[job]
        found["limit"] = limit
        # the same client thrice: measure() gives "replaced" and "replaced_net" an autocommit
        # connection, the latter through the delay proxy
        found["replaced"] = found["replaced_1tx"] = found["replaced_net"] = lambda c: (
            client(c, as_of) and None
        )
        return found

    def reset(self, conn: psycopg.Connection[Any], mark: int) -> None:
        for statement in filter(str.strip, self.reset_sql.split(";")):
            conn.execute(statement.encode(), {"mark": mark, "as_of": self.as_of})


LIMIT_RUN = """
INSERT INTO gstjobs.runs (job, trigger, reason, as_of, status, finished_at)
VALUES (%s, 'manual', 'bench: the limit', %s, 'succeeded', clock_timestamp())
RETURNING id
"""


def bare(conn: psycopg.Connection[Any]) -> None:
    """The limit starts where the job does, in a new session, and plans as the job does
    (gstjobs' enter_run): parsing, catalog look-ups and planning are counted in both."""
    conn.execute("SET LOCAL join_collapse_limit = 1")
    conn.execute("SET LOCAL from_collapse_limit = 1")


def explained(
    conn: psycopg.Connection[Any], options: str, sql: str, params: tuple[Any, ...]
) -> list[Any]:
    """The rows of EXPLAIN (options) of sql with its $n parameters bound, planned as the jobs
    plan them, its effects rolled back."""
    with conn.transaction(force_rollback=True), psycopg.RawCursor(conn) as cursor:
        bare(conn)
        cursor.execute(f"EXPLAIN ({options}) {sql}".encode(), params)
        return cursor.fetchall()


def buffers(case: "Case") -> int | None:
    """The shared buffers the job's statements touch at the case's moment, hit or read, each
    once, in one transaction rolled back: the work itself, which the machine's load does not
    change as it changes the time a run takes. Counted by the plans' nodes: the foreign-key
    checks, triggers fired after a plan, are not in it. None for health-check."""
    statements = case.statements()
    if not statements:
        return None
    touched = 0
    with (
        psycopg.connect(DSN) as conn,
        conn.transaction(force_rollback=True),
        psycopg.RawCursor(conn) as cursor,
    ):
        bare(conn)
        run = conn.execute(LIMIT_RUN, (case.job, case.as_of)).fetchone()
        assert run is not None
        # every batch, as limit() runs them: what one batch did stays for the next in this
        # transaction, so a full batch's statements are run again for the rest
        full = True
        while full:
            full = False
            for _, _, sql, batch in statements:
                params = (run[0], case.as_of, None, *([SLA_BATCH] if batch else []), *EVERY_FIRM)
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}".encode(), params)
                [[[plan]]] = cursor.fetchall()
                touched += plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
                full = full or bool(batch and took(plan))
    return touched


def took(plan: dict[str, Any]) -> bool:
    """Whether an sla-check statement's plan took a full batch: its CTE `acted` (the UPDATE)
    returned SLA_BATCH rows."""
    for node in plan["Plan"].get("Plans", []):
        if node.get("Subplan Name") == "CTE acted":
            return bool(node["Actual Rows"] >= SLA_BATCH)
    return False


def sla_case(as_of: datetime) -> Case:
    """sla-check at as_of; undone by forgetting what it detected at that moment."""
    forget = (
        "DELETE FROM gstjobs.notifications WHERE id > %(mark)s;"
        " UPDATE litigation.tasks SET sla_breach_detected_at = NULL WHERE sla_breach_detected_at = %(as_of)s;"
        " UPDATE litigation.tasks SET overdue_detected_at = NULL WHERE overdue_detected_at = %(as_of)s;"
        " UPDATE litigation.tasks SET sla_escalated_at = NULL WHERE sla_escalated_at = %(as_of)s;"
        " UPDATE litigation.tasks SET overdue_escalated_at = NULL WHERE overdue_escalated_at = %(as_of)s;"
    )
    detected = (
        "SELECT count(*) FROM litigation.tasks WHERE sla_breach_detected_at = '"
        + as_of.isoformat()
        + "' OR overdue_detected_at = '"
        + as_of.isoformat()
        + "'"
    )
    return Case("sla-check", as_of, forget, detected)


SLA_EVERY_MINUTE = "sla-check (1 min)"


def cases(base: datetime) -> dict[str, Case]:
    analytics_at = base + timedelta(hours=15, minutes=45)  # 23:50 in India
    slots = "DELETE FROM gstjobs.notifications WHERE id > %(mark)s; DELETE FROM gstjobs.slots WHERE job = '{}';"
    return {
        # after the backlog run at base: the tasks breaching in the next 10 minutes (about 1,000
        # at L, the most issue 6 calls steady state), and in the next minute, the job's schedule
        "sla-check": sla_case(base + timedelta(minutes=10)),
        SLA_EVERY_MINUTE: sla_case(base + timedelta(minutes=1)),
        "hearing-reminders": Case(
            "hearing-reminders",
            base,
            slots.format("hearing-reminders"),
            "SELECT count(*) FROM gstjobs.slots WHERE job = 'hearing-reminders'",
        ),
        "deadline-alerts": Case(
            "deadline-alerts",
            base + timedelta(hours=1),
            slots.format("deadline-alerts")
            + " UPDATE litigation.deadlines SET overdue_alerted_at = NULL WHERE overdue_alerted_at = %(as_of)s;",
            "SELECT count(*) FROM litigation.deadlines WHERE overdue_alerted_at IS NOT NULL",
        ),
        "analytics-snapshot": Case(
            "analytics-snapshot",
            analytics_at,
            # the snapshots a way wrote: computed now, where the history's are dated before
            slots.format("analytics-snapshot")
            + " DELETE FROM gstjobs.analytics_snapshots WHERE computed_at > %(as_of)s;",
            "SELECT md5(string_agg(row(tenant_id, local_date, open_cases_by_stage, demand_in_dispute,"
            " hearings_next_7_days, open_tasks, overdue_tasks, sla_compliance, deadlines_missed,"
            " anomalies)::text, '|' ORDER BY tenant_id, local_date))"
            f" FROM gstjobs.analytics_snapshots WHERE computed_at > '{analytics_at.isoformat()}'",
        ),
        # a manual run: it reports whatever the time (a scheduled one waits for 07:00)
        "health-check": Case(
            "health-check",
            base,
            slots.format("health-check") + " DELETE FROM gstjobs.health_reports;",
            "SELECT count(*) FROM gstjobs.health_reports",
        ),
    }


def measure(
    case: Case,
    repeat: int,
    ways: tuple[str, ...] | None = None,
    net_dsn: str | None = None,
    heartbeat: bool = False,
) -> dict[str, Any]:
    """Each way `repeat` times from the same state, the ways taking turns so that a change in
    the machine's load falls on all of them alike; the effects of every run are compared.
    replaced_net connects to net_dsn (the delay proxy), and is left out without one. With
    heartbeat, a run with nothing to do takes its turn too: the fixed cost this job is judged
    after, measured beside it rather than minutes before (result["heartbeat"])."""
    result: dict[str, Any] = {"as_of": case.as_of.isoformat(), "ways": {}}
    selected = {
        way: run
        for way, run in case.ways().items()
        if (ways is None or way in ways) and (way != "replaced_net" or net_dsn)
    }
    times: dict[str, list[float]] = {way: [] for way in selected}
    effects: dict[str, set[str]] = {way: set() for way in selected}
    statements: dict[str, int] = {}
    memory: dict[str, float] = {}
    beats: list[float] = []
    with psycopg.connect(DSN, autocommit=True) as admin:
        mark_row = admin.execute(
            "SELECT coalesce(max(id), 0) FROM gstjobs.notifications"
        ).fetchone()
        mark = int(mark_row[0]) if mark_row else 0
        for _ in range(repeat):
            if heartbeat:
                beats.append(timed_in_new_session(HEARTBEAT)[0])
            for way, run in selected.items():
                # the job commits itself; the replaced client, like PostgREST, commits every
                # statement; the limit and replaced_1tx commit once at the end
                autocommit = way in ("job", "replaced", "replaced_net")
                dsn = (net_dsn if way == "replaced_net" else None) or DSN
                with CountingConnection.connect(
                    dsn, autocommit=autocommit, cursor_factory=CountingCursor
                ) as conn:
                    started = time.perf_counter()
                    run(conn)
                    times[way].append(time.perf_counter() - started)
                    statements[way] = conn.statements
                    if way == "job":
                        memory = memory_mb(conn.info.backend_pid)
                        # what the run did, as its ledger says (slots taken, found, notified)
                        ledger = admin.execute(
                            "SELECT counts FROM gstjobs.runs WHERE job = %s"
                            " ORDER BY id DESC LIMIT 1",
                            (case.job,),
                        ).fetchone()
                        result["counts"] = ledger[0] if ledger else {}
                effects[way].add(digest(admin, mark, case.state))
                case.reset(admin, mark)
    for way in selected:
        result["ways"][way] = {
            "median_ms": round(statistics.median(times[way]) * 1000, 2),
            "runs_ms": [round(t * 1000, 2) for t in times[way]],
            # one digest when every run of the way left the same effects
            "effects": " | ".join(sorted(effects[way])),
        }
        if way.startswith("replaced"):
            result["ways"][way]["statements"] = statements[way]
        if way == "job" and memory:
            result["ways"][way]["backend_peak_mb"] = memory.get("VmHWM")
            result["ways"][way]["backend_heap_mb"] = memory.get("RssAnon")
    if beats:
        result["heartbeat"] = {
            "median_ms": round(statistics.median(beats) * 1000, 2),
            "runs_ms": [round(t * 1000, 2) for t in beats],
        }
    ways = result["ways"]
    result["same_effects"] = len(set().union(*effects.values())) == 1
    if "limit" in ways:
        result["job_over_limit"] = round(ways["job"]["median_ms"] / ways["limit"]["median_ms"], 2)
    for way in ("replaced", "replaced_1tx", "replaced_net"):
        if way in ways:
            result[f"{way}_over_job"] = round(ways[way]["median_ms"] / ways["job"]["median_ms"], 1)
    return result


HEARTBEAT = "CALL gstjobs.run_job('heartbeat')"


def timed_in_new_session(statement: str, params: tuple[Any, ...] = ()) -> tuple[float, Any]:
    """Seconds a statement takes in a new session, after connecting, as the jobs are timed, and
    its first row (a CALL's is the run_id), if it returns one."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        started = time.perf_counter()
        cursor = conn.execute(statement.encode(), params)
        took = time.perf_counter() - started
        return took, cursor.fetchone() if cursor.description else None


def fixed_cost(base: datetime, repeat: int) -> dict[str, Any]:
    """What every run pays before its work, each timed as the jobs are (in a new session, after
    connecting), median of `repeat`: a statement, Python's start, a run whose body is one
    statement (heartbeat; its runs kept in heartbeat_runs_ms), and a run of
    dispatch-notifications with nothing due (pg_cron's every minute, most minutes)."""
    # nothing is due a day before the data's 'now': the run claims nothing and sends nothing
    idle = base - timedelta(days=1)
    statements = {
        "select_1_ms": ("SELECT 1", ()),
        "python_start_ms": ("DO LANGUAGE plpython3u 'pass'", ()),
        "heartbeat_ms": (HEARTBEAT, ()),
        "dispatch_idle_ms": (
            "CALL gstjobs.run_job('dispatch-notifications', as_of => %s)",
            (idle,),
        ),
    }
    found: dict[str, Any] = {}
    idle_runs: list[int] = []
    for name, (statement, params) in statements.items():
        times = []
        for _ in range(repeat):
            took, row = timed_in_new_session(statement, params)
            times.append(took)
            if name == "dispatch_idle_ms":
                idle_runs.append(row[0])
        found[name] = round(statistics.median(times) * 1000, 2)
        if name == "heartbeat_ms":
            found["heartbeat_runs_ms"] = [round(t * 1000, 2) for t in times]
    with psycopg.connect(DSN, autocommit=True) as conn:
        quiet = conn.execute(
            "SELECT count(*) FROM gstjobs.runs WHERE id = ANY(%s) AND status = 'succeeded'"
            " AND (counts ->> 'sent')::int + (counts ->> 'retried')::int"
            " + (counts ->> 'dead')::int = 0",
            (idle_runs,),
        ).fetchone()
    assert quiet == (repeat,), f"of the runs {idle_runs}, {quiet} dispatched nothing"
    return found


def round_trip_ms(dsn: str, count: int = 1000) -> float:
    """The time of one round trip to the database (SELECT 1), averaged over count."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        started = time.perf_counter()
        for _ in range(count):
            conn.execute("SELECT 1").fetchone()
        return round((time.perf_counter() - started) / count * 1000, 3)


def dispatch_throughput(count: int) -> dict[str, Any]:
    """dispatch-notifications to a loopback SMTP sink that answers at once, with no rate limit
    (smtp.rate_per_second at its most): what the dispatcher itself can do, messages per second."""
    from aiosmtpd.controller import Controller

    class Counter:
        received = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Counter.received += 1
            return "250 OK"

    port = database.free_port()
    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with psycopg.connect(DSN, autocommit=True) as conn:
            for key, value in {
                "smtp.host": "127.0.0.1",
                "smtp.port": str(port),
                "smtp.rate_per_second": "10000",
                "dispatch.run_seconds": "3000",
            }.items():
                conn.execute("SELECT gstjobs.set_setting(%s, %s)", (key, value))
            conn.execute("DELETE FROM gstjobs.notifications")
            # the L backlog's half a million rows just deleted would still fill the outbox's
            # index; autovacuum clears them in a live system, here it may not have run yet
            conn.execute("VACUUM gstjobs.notifications")
            conn.execute(
                "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject,"
                " body, dedupe_key) SELECT 1, 'bench', 'email', 'ops@example.in', 'Hearing ' || g,"
                " 'Case ' || g || ' is listed tomorrow at 10:30 IST.', 'bench:' || g"
                " FROM generate_series(1, %s) AS g",
                (count,),
            )
            started = time.perf_counter()
            conn.execute("CALL gstjobs.run_job('dispatch-notifications')")
            seconds = time.perf_counter() - started
            sent = conn.execute(
                "SELECT count(*) FROM gstjobs.notifications WHERE status = 'sent'"
            ).fetchone()
            conn.execute(
                "DELETE FROM gstjobs.settings WHERE key IN ('smtp.host', 'smtp.port',"
                " 'smtp.rate_per_second', 'dispatch.run_seconds')"
            )
    finally:
        controller.stop()
    return {
        "messages": count,
        "seconds": round(seconds, 2),
        "per_second": round(count / seconds, 1),
        "sent": sent[0] if sent else 0,
        "received": Counter.received,
    }


# purge-history's daily work: a day of runs past retention (the minute jobs alone make ~3,500),
# while the outbox and the slots keep their recent rows, each pointing at its run
PURGE_SETUP = """
INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, finished_at)
SELECT 'heartbeat', 'cron', t, 'succeeded', t, t
FROM generate_series(1, %(runs)s) AS g,
     LATERAL (SELECT now() - interval '200 days' + g * interval '1 minute' AS t) AS at;
INSERT INTO gstjobs.runs (job, trigger, as_of, status, finished_at)
VALUES ('heartbeat', 'cron', now(), 'succeeded', now());
INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body, dedupe_key,
                                   status, sent_at, run_id)
SELECT 1, 'bench', 'email', 'ops@example.in', 'Hearing ' || g, 'Case ' || g || ' is listed.',
       'purge:' || g, 'sent', now() - interval '1 day', currval('gstjobs.runs_id_seq')
FROM generate_series(1, %(rows)s) AS g;
INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at, run_id)
-- tenant ids no firm has: the slots of the data stay as they are
SELECT 'analytics-snapshot', -g, current_date, 'done', now(), currval('gstjobs.runs_id_seq')
FROM generate_series(1, %(rows)s) AS g;
"""


def purge(runs: int, rows: int) -> dict[str, Any]:
    """purge-history deleting `runs` old runs beside `rows` recent notifications and slots."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        for statement in filter(str.strip, PURGE_SETUP.split(";")):
            conn.execute(statement.encode(), {"runs": runs, "rows": rows})
        conn.execute("VACUUM ANALYZE gstjobs.runs, gstjobs.notifications, gstjobs.slots")
        started = time.perf_counter()
        conn.execute("CALL gstjobs.run_job('purge-history')")
        seconds = time.perf_counter() - started
        row = conn.execute(
            "SELECT status, counts FROM gstjobs.runs WHERE job = 'purge-history'"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
    status, counts = row if row else (None, {})
    return {
        "old_runs": runs,
        "rows_beside": rows,
        "seconds": round(seconds, 2),
        "status": status,
        "runs_deleted": counts.get("runs"),
    }


def backlog(base: datetime) -> dict[str, Any]:
    """The first sla-check after installing on old data: every open breach at once."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("CALL gstjobs.run_job('sla-check', as_of => %s)", (base,))
        seconds = time.perf_counter() - started
        row = conn.execute("SELECT counts FROM gstjobs.runs ORDER BY id DESC LIMIT 1").fetchone()
        open_tasks = conn.execute(
            "SELECT count(*) FROM litigation.tasks WHERE status IN ('open', 'in_progress')"
        ).fetchone()
        # the steady state after it: autovacuum has visited the rows the backlog wrote, and
        # no checkpoint of them falls in the measured runs
        conn.execute("VACUUM ANALYZE litigation.tasks, gstjobs.notifications, gstjobs.runs")
        conn.execute("CHECKPOINT")
    counts = row[0] if row else {}
    return {
        "seconds": round(seconds, 2),
        "found": counts.get("found"),
        "notified": counts.get("notified"),
        "open_tasks": open_tasks[0] if open_tasks else 0,
    }


# How cost grows: open tasks (and hearings) at three scales, with the same number of newly
# breached tasks per sla-check run. 95% of the tasks open, so that a million are.
GROWTH = {
    "10k open": Size(firms=100, tasks=10_527, hearings=1_000, deadlines=1_000, open_share=0.95),
    "100k open": Size(firms=300, tasks=105_264, hearings=10_000, deadlines=2_000, open_share=0.95),
    "1M open": Size(
        firms=1_000, tasks=1_052_632, hearings=100_000, deadlines=2_000, open_share=0.95
    ),
}
NEW_BREACHES = 1_000

# a thousand tasks, spread over the firms, whose SLA passes half a second after the backlog run
BREACHING = """
INSERT INTO litigation.tasks (tenant_id, case_id, title, assignee_id, due_at, sla_due_at)
SELECT f.id, c.id, 'Newly breached ' || g, m.id, %(base)s::timestamptz + interval '1 day',
       %(base)s::timestamptz + interval '500 milliseconds'
FROM generate_series(1, %(count)s) AS g
JOIN LATERAL (SELECT id FROM litigation.tenants ORDER BY id
              OFFSET (g - 1) %% (SELECT count(*) FROM litigation.tenants) LIMIT 1) AS f ON true
JOIN LATERAL (SELECT id FROM litigation.cases WHERE tenant_id = f.id ORDER BY id LIMIT 1) AS c ON true
JOIN LATERAL (SELECT id FROM litigation.members WHERE tenant_id = f.id AND email IS NOT NULL
              ORDER BY id OFFSET 2 LIMIT 1) AS m ON true
"""


def growth(repeat: int, scale: float) -> dict[str, Any]:
    """sla-check with NEW_BREACHES new breaches, and hearing-reminders, at each GROWTH size
    (scaled down for the harness's own test)."""
    series: dict[str, Any] = {}
    new_breaches = max(10, round(NEW_BREACHES * scale))
    for name, full in GROWTH.items():
        size = Size(
            firms=max(2, round(full.firms * min(1.0, scale * 10))),
            tasks=round(full.tasks * scale),
            hearings=round(full.hearings * scale),
            deadlines=round(full.deadlines * scale),
            open_share=full.open_share,
        )
        print(f"growth {name}: {size}", flush=True)
        setup(size)
        base = anchor()
        entry: dict[str, Any] = {"size": size.__dict__, "backlog": backlog(base)}
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(BREACHING.encode(), {"base": base, "count": new_breaches})
            conn.execute("VACUUM ANALYZE litigation.tasks")
        sla = sla_case(base + timedelta(seconds=1))
        # before the measured runs, whose undoing leaves dead index entries behind
        touched = buffers(sla)
        entry["sla-check"] = measure(sla, repeat, ("job", "limit"))
        entry["sla-check"]["buffers"] = touched
        entry["hearing-reminders"] = measure(
            cases(base)["hearing-reminders"], repeat, ("job", "limit")
        )
        notified, detected = effects_counts(entry["sla-check"])
        entry["sla-check"]["tasks_detected"] = detected
        entry["sla-check"]["notifications"] = notified
        print(
            f"  sla-check {entry['sla-check']['ways']['job']['median_ms']} ms"
            f" ({detected} tasks, {notified} notifications, {touched} buffers),"
            f" hearing-reminders {entry['hearing-reminders']['ways']['job']['median_ms']} ms",
            flush=True,
        )
        series[name] = entry
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", action="append", choices=sorted(BENCH_SIZES))
    parser.add_argument(
        "--only", choices=(*JOBS, "dispatch-notifications", "purge-history", "peak")
    )
    parser.add_argument("--repeat", type=int, help="runs of each way (default 5; at xl, 1)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the bench database as it is (generated earlier the same day, by a run"
        " stopped after its set-up): no generating, history or backlog run",
    )
    parser.add_argument("--output", default=str(ROOT / "bench/results.json"))
    parser.add_argument(
        "--growth",
        action=argparse.BooleanOptionalAction,
        help="the growth series (10k, 100k, 1M open tasks); on by default for a full run",
    )
    parser.add_argument("--growth-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.size or ["seed", "l"]
    if args.growth is None:
        args.growth = not args.size and not args.only
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started_at": datetime.now(UTC).isoformat(),
        "repeat": args.repeat or {size: REPEAT.get(size, 5) for size in sizes},
        "sizes": {},
    }
    # the replaced client's network: a delay on loopback, started once, for every size
    with DelayProxy(PORT, NETWORK_RTT_MS) as proxy:
        for size_name in sizes:
            results["sizes"][size_name] = run_size(size_name, args, proxy)
            # what is measured so far, should a later size fail or the run be stopped
            Path(args.output).write_text(json.dumps(results, indent=2, default=str))
    with psycopg.connect(ADMIN) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        results["machine"]["postgresql"] = version[0] if version else None
    if args.growth:
        results["growth"] = growth(args.repeat or 5, args.growth_scale)
    results["targets"] = targets(results)
    Path(args.output).write_text(json.dumps(results, indent=2, default=str))
    print_table(results)


def prepare(size_name: str) -> tuple[datetime, dict[str, Any]]:
    """The bench's database at a size, as every measurement starts from it: generated, with
    its history, after the backlog run. Returns the data's 'now' and what was set up."""
    size = BENCH_SIZES[size_name]
    history_days = HISTORY_DAYS.get(size_name, 0)
    setup(size, history_days=history_days)
    base = anchor()
    entry: dict[str, Any] = {"size": size.__dict__, "backlog": backlog(base)}
    if history_days:
        entry["snapshot_history"] = snapshot_history(base)
    return base, entry


# At XL, each job once (its replaced ways take minutes each), and the replaced client over one
# connection only: the two other replaced ways cost as much again and say what L says already.
REPEAT = {"xl": 1}
WAYS: dict[str, tuple[str, ...]] = {"xl": ("job", "limit", "replaced")}


def run_size(size_name: str, args: argparse.Namespace, proxy: DelayProxy) -> dict[str, Any]:
    """Set up one size and measure what args ask for at it."""
    print(f"size {size_name}: {BENCH_SIZES[size_name]}", flush=True)
    if args.reuse:
        cluster("start")
        base, entry = anchor(), {"size": BENCH_SIZES[size_name].__dict__, "reused": True}
    else:
        base, entry = prepare(size_name)
    entry["jobs"] = {}
    # what a round trip costs, direct and through the proxy: the delay actually added
    net_dsn = f"postgresql://postgres@127.0.0.1:{proxy.port}/{DB}"
    entry["network"] = {
        "delay_ms": NETWORK_RTT_MS,
        "loopback_rtt_ms": round_trip_ms(DSN),
        "proxy_rtt_ms": round_trip_ms(net_dsn),
    }
    print(f"  round trips: {entry['network']}", flush=True)
    # the fixed cost and the runs judged after it are a few tens of milliseconds each, and two
    # medians are subtracted: more runs of them, so the hour's noise weighs less
    entry["fixed_cost"] = fixed_cost(base, args.repeat or SMALL_RUN_REPEAT)
    print(f"  fixed cost of a run: {entry['fixed_cost']}", flush=True)
    for job, case in cases(base).items():
        if args.only and args.only != case.job:
            continue
        small = (size_name, job) in SMALLER_THAN_A_RUN
        repeat = args.repeat or (SMALL_RUN_REPEAT if small else REPEAT.get(size_name, 5))
        relayed = proxy.relayed.value
        # before the measured runs, whose undoing leaves dead index entries behind
        touched = buffers(case)
        # a reused database (--reuse): the job and the limit only
        ways = ("job", "limit") if args.reuse else WAYS.get(size_name)
        entry["jobs"][job] = measure(case, repeat, ways, net_dsn=net_dsn, heartbeat=small) | {
            "buffers": touched
        }
        # what went through the proxy meanwhile: the network way's requests, nothing else
        entry["jobs"][job]["proxy_chunks"] = proxy.relayed.value - relayed
        print(
            f"  {job}: "
            + json.dumps(
                {k: v for k, v in entry["jobs"][job].items() if k != "ways"}
                | {w: v["median_ms"] for w, v in entry["jobs"][job]["ways"].items()}
            ),
            flush=True,
        )
    if args.only in (None, "dispatch-notifications"):
        count = {"tiny": 100, "seed": 1000}.get(size_name, 10000)
        # three times: its spread on this machine, as the rate is what people wait on
        entry["dispatch"] = [dispatch_throughput(count) for _ in range(3)]
        print(f"  dispatch: {entry['dispatch']}", flush=True)
    if args.only in (None, "purge-history"):
        runs, rows = {"tiny": (50, 1_000), "seed": (500, 10_000)}.get(size_name, (5_000, 300_000))
        entry["purge"] = purge(runs, rows)
        print(f"  purge-history: {entry['purge']}", flush=True)
    # the peak changes the data (it takes a day's slots), so it comes last
    if args.only == "peak" or (args.only is None and size_name == "l"):
        day = base.replace(hour=0, minute=0, second=0, microsecond=0)
        entry["peak"] = peak.measure(DSN, ADMIN, restart_cluster, day)
        print(f"  peak: {json.dumps({k: v for k, v in entry['peak'].items() if k != 'slots'})}")
    return entry


def restart_cluster() -> None:
    """The bench's cluster restarted: pg_cron's launcher runs again (dropping its database, as
    setup does, stops it)."""
    cluster("restart")


# job/limit's target, and where a run's fixed cost is most of it: there the job is judged after
# that cost, (job - heartbeat) / limit, the heartbeat being a run whose body does nothing
JOB_OVER_LIMIT = 1.3
SMALLER_THAN_A_RUN = {
    (size, job) for size in ("tiny", "seed") for job in (*JOBS, SLA_EVERY_MINUTE)
} | {("l", SLA_EVERY_MINUTE)}
FIXED_COST_MS = 25
SMALL_RUN_REPEAT = 15
PEAK_P99_S = 120
PEAK_PER_S = {"email": 200, "whatsapp": 75}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target as decided (docs/BENCHMARKS.md, "Targets"), each PASS or FAIL."""
    found: list[dict[str, Any]] = []

    def check(name: str, value: Any, passed: bool) -> None:
        found.append({"target": name, "value": value, "pass": passed})

    for size_name, entry in results["sizes"].items():
        beats = fixed_cost_runs(entry)
        heartbeat = round(statistics.median(beats), 2)
        # judged on a fresh install (seed), where nothing but the run is measured; at L the
        # same run reads a ledger of 90 days, and is reported (docs/BENCHMARKS.md)
        if size_name not in ("l", "xl"):
            check(
                f"{size_name} fixed cost: a run with nothing to do (heartbeat) <="
                f" {FIXED_COST_MS} ms (median of {len(beats)}, in turns with the jobs)",
                heartbeat,
                heartbeat <= FIXED_COST_MS,
            )
        for job, measured in entry["jobs"].items():
            fixed = judged_after(measured, heartbeat)
            check(
                f"{size_name} {job}: same effects all ways",
                measured["same_effects"],
                measured["same_effects"],
            )
            ways = measured["ways"]
            if "limit" in ways and (size_name, job) in SMALLER_THAN_A_RUN:
                after = round((ways["job"]["median_ms"] - fixed) / ways["limit"]["median_ms"], 2)
                check(
                    f"{size_name} {job}: job/limit <= {JOB_OVER_LIMIT} after a run's fixed cost"
                    f" ({fixed} ms)",
                    after,
                    after <= JOB_OVER_LIMIT,
                )
            elif "job_over_limit" in measured and size_name in ("l", "xl"):
                check(
                    f"{size_name} {job}: job/limit <= {JOB_OVER_LIMIT}",
                    measured["job_over_limit"],
                    measured["job_over_limit"] <= JOB_OVER_LIMIT,
                )
            # issue 6's replaced/job target, for sla-check, reminders and deadlines at L, is
            # judged as the replaced system ran: over a network. The one-minute sla-check is
            # not that work but its schedule's load, mostly a run's fixed cost: it is judged by
            # 50 ms and by job/limit after that cost (below), its replaced/job only reported
            if (
                size_name == "l"
                and job not in ("analytics-snapshot", SLA_EVERY_MINUTE)
                and "replaced_net_over_job" in measured
            ):
                network = entry["network"]
                added = round(network["proxy_rtt_ms"] - network["loopback_rtt_ms"], 2)
                check(
                    f"l {job}: replaced/job >= 20 over a network (+{added:g} ms a round trip)",
                    measured["replaced_net_over_job"],
                    measured["replaced_net_over_job"] >= 20,
                )
            heap = ways["job"].get("backend_heap_mb")
            if size_name == "l" and heap is not None:
                check(f"l {job}: backend memory (RssAnon) <= 100 MB", heap, heap <= 100)
            # at seed a job's work is smaller than a run's fixed cost (judged on its own line):
            # the work is compared, as job/limit is
            if size_name == "seed" and job in REPLACED_REPORTED:
                work = round(ways["job"]["median_ms"] - fixed, 2)
                check(
                    f"seed {job}: 100x faster than the replaced system's"
                    f" {REPLACED_REPORTED[job]} s after a run's fixed cost ({fixed} ms)",
                    work,
                    work * 100 <= REPLACED_REPORTED[job] * 1000,
                )
        if size_name == "l":
            # 50 ms at its schedule's load, one minute of new breaches: work smaller than a run's
            # fixed cost, judged after it (issue 22, point 5), as its job/limit is. The whole
            # run cannot be 50 ms while pg_cron starts a new session for each: its statements
            # alone, bare, take about that long in one (the limit, reported beside it)
            sla = entry["jobs"].get(SLA_EVERY_MINUTE)
            if sla:
                ms = sla["ways"]["job"]["median_ms"]
                fixed = judged_after(sla, heartbeat)
                work = round(ms - fixed, 2)
                tasks = effects_counts(sla)[1]
                check(
                    f"l sla-check <= 50 ms at its schedule after a run's fixed cost ({ms} -"
                    f" {fixed} ms; one minute: {tasks} newly detected)",
                    work,
                    work <= 50,
                )
            analytics = entry["jobs"].get("analytics-snapshot")
            if analytics:
                ms = analytics["ways"]["job"]["median_ms"]
                check("l analytics-snapshot <= 10 s", ms, ms <= 10000)
        runs = entry.get("dispatch", [])
        if runs and runs[0]["messages"] >= 10000:
            rates = [r["per_second"] for r in runs]
            check(
                f"{size_name} dispatch alone >= 200 emails/s (median of {len(rates)},"
                f" {min(rates)}-{max(rates)})",
                statistics.median(rates),
                statistics.median(rates) >= 200,
            )
        found.extend(peak_targets(size_name, entry.get("peak")))
    series = results.get("growth", {})
    if "10k open" in series and "1M open" in series:
        small = series["10k open"]["sla-check"]["ways"]["job"]["median_ms"]
        large = series["1M open"]["sla-check"]["ways"]["job"]["median_ms"]
        check(
            "sla-check growth 10k -> 1M open tasks <= 2x",
            round(large / small, 2),
            large <= 2 * small,
        )
    return found


def judged_after(measured: dict[str, Any], heartbeat: float) -> float:
    """The fixed cost a job is judged after: its own, measured beside it, else the size's."""
    return float(measured.get("heartbeat", {}).get("median_ms", heartbeat))


def fixed_cost_runs(entry: dict[str, Any]) -> list[float]:
    """Every run with nothing to do (heartbeat) a size measured, in ms: the fixed cost's own
    and those in turns with the jobs (a few minutes of the machine's hour, not one moment)."""
    fixed = entry["fixed_cost"]
    return fixed.get("heartbeat_runs_ms", [fixed["heartbeat_ms"]]) + [
        beat
        for measured in entry["jobs"].values()
        for beat in measured.get("heartbeat", {}).get("runs_ms", [])
    ]


def peak_targets(size_name: str, measured: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The 08:00 peak's targets: every message within two minutes of its slot's run, at the
    provider's pace, none lost, none twice, no 429 turned into a dead letter."""
    if not measured:
        return []
    found = []
    for channel, least in PEAK_PER_S.items():
        sent = measured.get(channel)
        if not sent or not sent["messages"]:
            continue
        found.append(
            {
                "target": f"{size_name} peak {channel}: 0 lost, 0 sent twice, 0 dead",
                "value": f"{sent['lost']} / {sent['duplicates']} / {sent['dead']}",
                "pass": sent["lost"] == sent["duplicates"] == sent["dead"] == 0,
            }
        )
        if size_name != "l":
            continue  # latency and pace are judged at the large size, the peak of a thousand firms
        p99 = sent["latency_s"]["p99"] if sent["latency_s"] else None
        found += [
            {
                "target": f"{size_name} peak {channel}: p99 <= {PEAK_P99_S} s from the slot's run"
                f" ({sent['messages']} messages)",
                "value": p99,
                "pass": p99 is not None and p99 <= PEAK_P99_S,
            },
            {
                "target": f"{size_name} peak {channel}: >= {least} accepted a second",
                "value": sent["per_s"],
                "pass": (sent["per_s"] or 0) >= least,
            },
        ]
    runs = measured.get("dispatch_runs", {})
    if "skipped" in runs:
        # each tick's run starts beside the last one's drain: a skipped run is a minute lost
        found.append(
            {
                "target": f"{size_name} peak: no dispatch run skipped (of {runs['count']})",
                "value": runs["skipped"],
                "pass": runs["skipped"] == 0,
            }
        )
    return found


def size_growth(results: dict[str, Any]) -> list[list[Any]]:
    """Each job at each size measured (seed, L, XL), with what it did and what it touched, and
    the factor over the size before: time, buffers, and work (firms in the slot for the slot
    jobs, tasks found for sla-check). A job whose buffers grow faster than its work is a
    finding (docs/BENCHMARKS.md, "Growth: seed, L, XL")."""
    sizes = [s for s in ("seed", "l", "xl") if s in results["sizes"]]
    if len(sizes) < 2:
        return []
    rows: list[list[Any]] = []
    for job in results["sizes"][sizes[0]]["jobs"]:
        before: tuple[float, int | None, float] | None = None
        for size in sizes:
            measured = results["sizes"][size]["jobs"].get(job)
            if measured is None:
                continue
            counts = measured.get("counts", {})
            slots = counts.get("slots")
            found = counts.get("found", counts.get("snapshots"))
            work = float(slots if slots is not None else found or 0)
            ms = measured["ways"]["job"]["median_ms"]
            touched = measured.get("buffers")

            def factor(now: float | None, then: float | None) -> Any:
                return round(now / then, 1) if now and then else ""

            rows.append(
                [
                    job,
                    size,
                    slots if slots is not None else "",
                    found if found is not None else "",
                    counts.get("notified", ""),
                    ms,
                    touched if touched is not None else "",
                    factor(ms, before[0]) if before else "",
                    factor(touched, before[1]) if before else "",
                    factor(work, before[2]) if before else "",
                ]
            )
            before = (ms, touched, work)
    return rows


def print_table(results: dict[str, Any]) -> None:
    from tabulate import tabulate

    rows = []
    for size_name, entry in results["sizes"].items():
        for job, measured in entry["jobs"].items():
            ways = measured["ways"]
            rows.append(
                [size_name, job]
                + [
                    ways.get(w, {}).get("median_ms", "")
                    for w in ("job", "limit", "replaced", "replaced_1tx", "replaced_net")
                ]
                + [
                    measured.get("job_over_limit", ""),
                    measured.get("replaced_over_job", ""),
                    measured.get("replaced_1tx_over_job", ""),
                    ways.get("replaced", {}).get("statements", ""),
                    measured.get("replaced_net_over_job", ""),
                    measured["same_effects"],
                    measured.get("buffers", ""),
                    ways["job"].get("backend_peak_mb", ""),
                    ways["job"].get("backend_heap_mb", ""),
                ]
            )
    print(
        tabulate(
            rows,
            headers=[
                "size",
                "job",
                "job ms",
                "limit ms",
                "replaced ms",
                "replaced 1 tx ms",
                "replaced net ms",
                "job/limit",
                "replaced/job",
                "replaced 1 tx/job",
                "replaced statements",
                "replaced net/job",
                "same effects",
                "buffers",
                "VmHWM MB",
                "RssAnon MB",
            ],
        )
    )
    if results.get("growth"):
        print()
        print(
            tabulate(
                [
                    [
                        name,
                        entry["backlog"]["open_tasks"],
                        entry["sla-check"]["tasks_detected"],
                        entry["sla-check"]["ways"]["job"]["median_ms"],
                        entry["sla-check"]["ways"]["limit"]["median_ms"],
                        entry["sla-check"]["buffers"],
                        entry["size"]["hearings"],
                        entry["hearing-reminders"]["ways"]["job"]["median_ms"],
                        entry["hearing-reminders"]["ways"]["limit"]["median_ms"],
                    ]
                    for name, entry in results["growth"].items()
                ],
                headers=[
                    "growth",
                    "open tasks",
                    "new breaches",
                    "sla job ms",
                    "sla limit ms",
                    "sla buffers",
                    "hearings",
                    "reminders job ms",
                    "reminders limit ms",
                ],
            )
        )
    by_size = size_growth(results)
    if by_size:
        print()
        print(
            tabulate(
                by_size,
                headers=[
                    "growth by size",
                    "size",
                    "firms in the slot",
                    "found",
                    "notified",
                    "job ms",
                    "buffers",
                    "x ms",
                    "x buffers",
                    "x work",
                ],
            )
        )
    fixed = {name: entry["fixed_cost"] for name, entry in results["sizes"].items()}
    print()
    print(
        tabulate(
            [
                [name, *(v for k, v in costs.items() if k != "heartbeat_runs_ms")]
                for name, costs in fixed.items()
            ],
            headers=[
                "fixed cost of a run",
                "SELECT 1 ms",
                "Python's start ms",
                "heartbeat ms",
                "dispatch, nothing due ms",
            ],
        )
    )
    peaks = [
        [
            name,
            channel,
            sent["messages"],
            *(sent["latency_s"] or {}).values(),
            sent["per_s"],
            sent["lost"],
            sent["duplicates"],
            sent["dead"],
        ]
        for name, entry in results["sizes"].items()
        for channel, sent in entry.get("peak", {}).items()
        if channel in ("email", "whatsapp")
    ]
    if peaks:
        print()
        print(
            tabulate(
                peaks,
                headers=[
                    "08:00 peak",
                    "channel",
                    "messages",
                    "p50 s",
                    "p99 s",
                    "max s",
                    "per s",
                    "lost",
                    "twice",
                    "dead",
                ],
            )
        )
    print()
    print(
        tabulate(
            [
                [t["target"], t["value"], "PASS" if t["pass"] else "FAIL"]
                for t in results["targets"]
            ],
            headers=["target", "measured", ""],
        )
    )


if __name__ == "__main__":
    main()
