"""make soak: real pg_cron scheduling with every job active, under a steady stream of changes.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 100]

Sets up its own cluster (scripts/cluster.sh soak, port 54324) with log_lock_waits on
(deadlock_timeout = 1 s, so any lock wait of a second or more is logged), generates firms
with the shared generator, points dispatch-notifications at an SMTP sink on 127.0.0.1, and
for --minutes lets pg_cron run everything while a loopback load generator, as the firms'
application (gstjobs_app, row-level security), inserts, completes and reschedules tasks and
hearings at --rate changes per second. Then it checks and prints (and writes bench/soak.json):

  every SLA breach notified exactly once (none lost, none twice), every email the sink got
  was sent once; every run succeeded or was skipped (ledger and cron.job_run_details);
  lock waits of 1 s or more (server log); the server's own memory (RssAnon) by kind of process, minute by minute.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gstjobs.datagen import Size, generate  # noqa: E402

from bench import database  # noqa: E402

PORT = int(os.environ.get("GSTJOBS_SOAK_PORT", "54324"))
CLUSTER = "soak"
DB = "gstjobs_soak"
ADMIN = f"postgresql://postgres@127.0.0.1:{PORT}/postgres"
DSN = f"postgresql://postgres@127.0.0.1:{PORT}/{DB}"
FIRMS = Size(firms=20, tasks=20_000, hearings=2_000, deadlines=2_000)
MAX_RATE, MAX_MINUTES = 200, 60


def cluster(action: str) -> str:
    env = {**os.environ, "GSTJOBS_PORT": str(PORT), "GSTJOBS_CRON_DB": DB}
    done = subprocess.run(
        [str(ROOT / "scripts/cluster.sh"), action, CLUSTER],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def launcher_running(conn: psycopg.Connection[Any]) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'"
        ).fetchone()
        is not None
    )


def setup(smtp_port: int) -> Path:
    """A fresh soak database at head, with firms; returns the server log's path."""
    started = cluster("start")
    log = Path(re.search(r"log: ([^)]+)\)", started).group(1))  # type: ignore[union-attr]
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_lock_waits = on")
        conn.execute("ALTER SYSTEM SET deadlock_timeout = '1s'")
    database.recreate(ADMIN, DB, DSN)
    with psycopg.connect(DSN, autocommit=True) as conn:
        # pg_cron's launcher ends for good when its database is dropped: a restart brings it
        # back (and applies the settings above)
        conn.execute("UPDATE cron.job SET active = false")
        generate(conn, FIRMS, seed=7, anchor=datetime.now(UTC))
        # email only: the soak has no WhatsApp endpoint
        conn.execute("UPDATE litigation.tenants SET whatsapp_enabled = false")
        for key, value in {
            "smtp.host": "127.0.0.1",
            "smtp.port": str(smtp_port),
            "ops.email": "ops@soak.example",
            # 100 a run would fall behind 40 new breaches a second; one message per commit
            "dispatch.per_run_limit": "6000",
        }.items():
            conn.execute("SELECT gstjobs.set_setting(%s, %s)", (key, value))
        conn.execute("VACUUM ANALYZE")
    cluster("restart")
    with psycopg.connect(DSN, autocommit=True) as conn:
        assert launcher_running(conn), "pg_cron's launcher did not start"
        # health-check counts expected ticks from here on
        conn.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
        conn.execute("UPDATE cron.job SET active = true")
    return log


class Load:
    """The firms' application: one change at a time, at a steady rate, as gstjobs_app."""

    def __init__(self, rate: int, stop: threading.Event) -> None:
        self.rate, self.stop = rate, stop
        self.changes: dict[str, int] = {}
        self.errors: list[str] = []
        self.slowest = 0.0

    def run(self) -> None:
        rng = random.Random(11)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute("SET ROLE gstjobs_app")
            with psycopg.connect(DSN) as owner:
                firms = [r[0] for r in owner.execute("SELECT id FROM litigation.tenants")]
                members = {
                    firm: [
                        r[0]
                        for r in owner.execute(
                            "SELECT id FROM litigation.members WHERE tenant_id = %s AND active",
                            (firm,),
                        )
                    ]
                    for firm in firms
                }
                cases = {
                    firm: [
                        r[0]
                        for r in owner.execute(
                            "SELECT id FROM litigation.cases WHERE tenant_id = %s", (firm,)
                        )
                    ]
                    for firm in firms
                }
            interval = 1.0 / self.rate
            next_at = time.monotonic()
            while not self.stop.is_set():
                firm = rng.choice(firms)
                kind = rng.choices(
                    ["new_task", "complete", "reschedule", "new_hearing", "move_hearing"],
                    weights=[40, 25, 15, 10, 10],
                )[0]
                started = time.monotonic()
                try:
                    with conn.transaction():
                        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(firm),))
                        self.change(conn, rng, kind, firm, members[firm], cases[firm])
                    self.changes[kind] = self.changes.get(kind, 0) + 1
                except psycopg.Error as error:
                    self.errors.append(f"{kind}: {error}")
                self.slowest = max(self.slowest, time.monotonic() - started)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def change(
        conn: psycopg.Connection[Any],
        rng: random.Random,
        kind: str,
        firm: int,
        members: list[int],
        cases: list[int],
    ) -> None:
        if kind == "new_task":
            # due within the next two minutes: it breaches while the soak runs
            conn.execute(
                "INSERT INTO litigation.tasks (tenant_id, case_id, title, assignee_id, due_at,"
                " sla_due_at) VALUES (%s, %s, 'Soak task', %s, now() + %s * interval '1 second',"
                " now() + %s * interval '1 second')",
                (
                    firm,
                    rng.choice(cases),
                    rng.choice(members),
                    rng.randint(30, 180),
                    rng.randint(0, 120),
                ),
            )
        elif kind == "complete":
            conn.execute(
                "UPDATE litigation.tasks SET status = 'completed', completed_at = now()"
                " WHERE (tenant_id, id) = (SELECT tenant_id, id FROM litigation.tasks"
                " WHERE tenant_id = %s AND status = 'open' ORDER BY sla_due_at LIMIT 1"
                " FOR UPDATE SKIP LOCKED)",
                (firm,),
            )
        elif kind == "reschedule":
            # a breached task given more time: it is checked afresh at its new time
            conn.execute(
                "UPDATE litigation.tasks SET sla_due_at = now() + interval '90 seconds'"
                " WHERE (tenant_id, id) = (SELECT tenant_id, id FROM litigation.tasks"
                " WHERE tenant_id = %s AND status = 'open' AND sla_breach_detected_at IS NOT NULL"
                " ORDER BY sla_breach_detected_at DESC LIMIT 1 FOR UPDATE SKIP LOCKED)",
                (firm,),
            )
        elif kind == "new_hearing":
            conn.execute(
                "INSERT INTO litigation.hearings (tenant_id, case_id, starts_at, forum)"
                " VALUES (%s, %s, now() + %s * interval '1 hour', 'Appellate Authority')",
                (firm, rng.choice(cases), rng.randint(1, 24 * 9)),
            )
        else:
            conn.execute(
                "UPDATE litigation.hearings SET starts_at = starts_at + interval '1 day'"
                " WHERE (tenant_id, id) = (SELECT tenant_id, id FROM litigation.hearings"
                " WHERE tenant_id = %s AND status = 'scheduled' ORDER BY random() LIMIT 1"
                " FOR UPDATE SKIP LOCKED)",
                (firm,),
            )


def own_memory_mb(postmaster: int) -> dict[str, float]:
    """The soak server's own memory (RssAnon: heap and stack, not the shared buffers, which
    are RssShmem), in MB, summed by kind of process: postmaster, pg_cron launcher,
    checkpointer, client backend (the load), pg_cron (a job's worker), ..."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        kinds = dict(conn.execute("SELECT pid, backend_type FROM pg_stat_activity").fetchall())
    totals: dict[str, float] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # ended meanwhile
        pid = int(status.parent.name)
        parent = re.search(r"^PPid:\s+(\d+)", text, re.M)
        anon = re.search(r"^RssAnon:\s+(\d+)", text, re.M)
        # this server only: its postmaster and the processes it started
        if anon is None or parent is None or postmaster not in (pid, int(parent.group(1))):
            continue
        kind = "postmaster" if pid == postmaster else kinds.get(pid, "other")
        totals[kind] = round(totals.get(kind, 0) + int(anon.group(1)) / 1024, 1)
    return dict(sorted(totals.items()))


def growth(samples: list[dict[str, float]]) -> dict[str, float]:
    """Per kind of long-lived process, its memory at the end less at the second minute."""
    # pg_cron's job workers are of type "pg_cron": one lives as long as its run
    short_lived = {"pg_cron", "client backend", "autovacuum worker", "other"}
    if len(samples) < 3:
        return {}
    first, last = samples[1], samples[-1]
    return {
        k: round(last.get(k, 0) - first.get(k, 0), 1)
        for k in sorted(set(first) | set(last))
        if k not in short_lived
    }


def check(started: datetime, ended: datetime, received: list[str]) -> dict[str, Any]:
    with psycopg.connect(DSN, autocommit=True) as conn:
        runs = conn.execute(
            "SELECT job, status, count(*) FROM gstjobs.runs WHERE started_at >= %s"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (started,),
        ).fetchall()
        cron = conn.execute(
            "SELECT d.status, count(*), string_agg(DISTINCT d.return_message, '; ')"
            " FILTER (WHERE d.status <> 'succeeded') FROM cron.job_run_details AS d"
            " WHERE d.start_time >= %s GROUP BY 1",
            (started,),
        ).fetchall()
        # a task whose SLA passed more than two minutes before the end, while it was open
        # and still is: its breach must have been found and told to its assignee, once
        breaches = conn.execute(
            """
            WITH due AS (
                SELECT t.tenant_id, t.id, t.sla_due_at, t.sla_breach_detected_at,
                       format('sla-breach:%%s:%%s:%%s', t.tenant_id, t.id,
                              extract(epoch FROM t.sla_due_at)::bigint) AS key
                FROM litigation.tasks AS t
                JOIN litigation.members AS m ON m.tenant_id = t.tenant_id AND m.id = t.assignee_id
                WHERE t.status IN ('open', 'in_progress') AND m.active AND m.email IS NOT NULL
                  AND t.sla_due_at BETWEEN %s AND %s
            )
            SELECT count(*),
                   count(*) FILTER (WHERE sla_breach_detected_at IS NULL),
                   count(*) FILTER (WHERE NOT EXISTS (
                       SELECT FROM gstjobs.notifications AS n
                       WHERE n.dedupe_key LIKE due.key || ':%%' AND n.channel = 'email'))
            FROM due
            """,
            (started, ended - timedelta(minutes=2)),
        ).fetchone()
        # the dedupe key names the task, its due time, the recipient and the channel
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT split_part(dedupe_key, ':', 1), split_part(dedupe_key, ':', 2),"
            " split_part(dedupe_key, ':', 3), split_part(dedupe_key, ':', 4), channel"
            " FROM gstjobs.notifications WHERE created_at >= %s AND kind = 'sla-breach'"
            " GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1) AS d",
            (started,),
        ).fetchone()
        outbox = dict(
            conn.execute(
                "SELECT status, count(*) FROM gstjobs.notifications WHERE created_at >= %s"
                " GROUP BY 1",
                (started,),
            ).fetchall()
        )
    assert breaches is not None and twice is not None
    return {
        "runs": [{"job": j, "status": s, "count": n} for j, s, n in runs],
        "cron_job_run_details": [{"status": s, "count": n, "messages": m} for s, n, m in cron],
        "breaches_due": breaches[0],
        "breaches_not_detected": breaches[1],
        "breaches_not_notified": breaches[2],
        "breach_notifications_duplicated": twice[0],
        "outbox": outbox,
        "emails_received": len(received),
        "emails_received_twice": len(received) - len(set(received)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=100, help="changes per second")
    args = parser.parse_args()
    if not (0 < args.rate <= MAX_RATE and 0 < args.minutes <= MAX_MINUTES):
        parser.error(f"--rate 1..{MAX_RATE}, --minutes up to {MAX_MINUTES}")

    from aiosmtpd.controller import Controller

    received: list[str] = []

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            found = re.search(rb"^Message-ID: (.+)$", envelope.content, re.M | re.I)
            received.append(found.group(1).decode().strip() if found else "?")
            return "250 OK"

    smtp_port = database.free_port()
    stop = threading.Event()
    sink = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    sink.start()
    try:
        print("== setting up the soak cluster", flush=True)
        log = setup(smtp_port)
        log_offset = log.stat().st_size
        postmaster = int((log.parent / "data/postmaster.pid").read_text().split()[0])
        load = Load(args.rate, stop)
        loader = threading.Thread(target=load.run, daemon=True)
        started = datetime.now(UTC)
        loader.start()
        memory = []
        deadline = time.monotonic() + args.minutes * 60
        print(f"== soaking {args.minutes} min at {args.rate} changes/s", flush=True)
        while time.monotonic() < deadline:
            memory.append(own_memory_mb(postmaster))
            print(
                f"  {datetime.now(UTC):%H:%M:%S} changes {sum(load.changes.values())},"
                f" memory MB by process kind {memory[-1]}",
                flush=True,
            )
            time.sleep(min(60, max(0, deadline - time.monotonic())))
        stop.set()
        loader.join(30)
        ended = datetime.now(UTC)
        # let the last breaches be found and their emails sent: two more minutes of ticks
        time.sleep(150)
        memory.append(own_memory_mb(postmaster))
        results = check(started, ended, received)
        waits = [
            line
            for line in log.read_text(errors="replace")[log_offset:].splitlines()
            if "still waiting for" in line
        ]
        results.update(
            minutes=args.minutes,
            rate=args.rate,
            changes=load.changes,
            change_errors=load.errors[:20],
            change_errors_total=len(load.errors),
            slowest_change_seconds=round(load.slowest, 3),
            lock_waits_over_1s=len(waits),
            lock_wait_examples=waits[:5],
            memory_mb_per_minute=memory,
            long_lived_memory_growth_mb=growth(memory),
            started=started.isoformat(),
            ended=ended.isoformat(),
        )
        (ROOT / "bench/soak.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(json.dumps(results, indent=2, default=str))
    finally:
        stop.set()
        sink.stop()
        cluster("stop")


if __name__ == "__main__":
    main()
