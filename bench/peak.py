"""The 08:00 peak, as people experience it: when does each message reach the provider?

On the bench's database at its size (L: 1,000 firms, 95% of them in India), pg_cron takes the
08:00 IST slot of every firm with hearing-reminders, then the 09:00 slot with deadline-alerts,
while dispatch-notifications runs as scheduled (`* * * * *`) in real time, against loopback
servers that behave like providers:

  SMTP      accepts each message after 20-50 ms (a relay's latency), any number of sessions
  WhatsApp  answers each request after 150-250 ms, and with 429 and `Retry-After: 1` to a
            request beyond 80 in the last second (the Cloud API's standard throughput)

The slots are replayed: pg_cron runs the job's own cron entry with `as_of` set to the slot's
time on the data's day (its command altered for one tick, as an operator could), and the
dispatcher runs as it always does. Latency is counted in real time from the start of the slot's
run (its ledger row) to the server's acceptance of each message. The day before each slot is
taken first, untimed, so each slot does a steady day's work (yesterday's countdown alerts and
overdue notices sent), and the outbox starts empty.

Reports per channel: latency p50, p99 and max; the sustained rate; messages lost (written by
the slot's run, not accepted by the server when its outbox has settled) and sent twice
(accepted more than once); HTTP 429s answered, and dead letters.
"""

import asyncio
import json
import multiprocessing
import random
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from aiosmtpd.controller import Controller

from bench import database

SMTP_LATENCY_S = (0.020, 0.050)
WHATSAPP_LATENCY_S = (0.150, 0.250)
WHATSAPP_PER_SECOND = 80
# the slots: (job, local time, the data day's UTC time of it in India)
SLOTS = (
    ("hearing-reminders", "08:00", timedelta(hours=2, minutes=30)),
    ("deadline-alerts", "09:00", timedelta(hours=3, minutes=30)),
)
# how long a slot's outbox may take to settle before the bench gives up on it
SETTLE_LIMIT_S = 900


class Accepted:
    """What a sink accepted: the time of each acceptance, by the notification's id (the
    Message-ID's local part, the WhatsApp request's X-Request-Id: sha256 of its dedupe key),
    and the requests refused with 429."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.refused = 0
        self.refused_at: list[float] = []  # when each 429 was answered (epoch seconds)

    def add(self, key: str, at: float) -> None:
        with self.lock:
            self.times.setdefault(key, []).append(at)

    def refuse(self, at: float) -> None:
        with self.lock:
            self.refused += 1
            self.refused_at.append(at)


class Reporter:
    """A sink's side of Accepted, in the sink's own process: each event (the key, or None for
    a 429, and the time) goes to the bench's process through a queue."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def add(self, key: str) -> None:
        self.events.put((key, time.time()))

    def refuse(self) -> None:
        self.events.put((None, time.time()))


class Relay:
    """aiosmtpd, accepting each message after 20-50 ms."""

    def __init__(self, accepted: Reporter) -> None:
        self.accepted = accepted

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(random.uniform(*SMTP_LATENCY_S))
        for line in envelope.content.splitlines():
            if line.lower().startswith(b"message-id:"):
                self.accepted.add(line.split(b"<", 1)[1].split(b"@", 1)[0].decode())
                break
        return "250 2.0.0 Ok: queued"


def whatsapp_handler(accepted: Reporter) -> type[BaseHTTPRequestHandler]:
    recent: deque[float] = deque()  # the requests answered 200 in the last second
    lock = threading.Lock()

    class Api(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.monotonic()
            with lock:
                while recent and recent[0] <= now - 1:
                    recent.popleft()
                allowed = len(recent) < WHATSAPP_PER_SECOND
                if allowed:
                    recent.append(now)
            time.sleep(random.uniform(*WHATSAPP_LATENCY_S))
            if allowed:
                accepted.add(self.headers["X-Request-Id"])
                self.answer(200, {"messages": [{"id": f"wamid.{self.headers['X-Request-Id']}"}]})
            else:
                accepted.refuse()
                self.answer(429, {"error": {"code": 130429, "message": "rate limit hit"}})

        def answer(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Api


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many requests at once: no connection waits on the backlog


def serve(kind: str, port: int, events: Any, stop: Any) -> None:
    """One sink ("smtp" or "whatsapp") on 127.0.0.1:port until stop is set, in a process of its
    own: a sink that shares the bench's interpreter (and the other sink's) waits for the GIL
    and stamps its requests late and in clumps, which the 80-a-second window then refuses."""
    reporter = Reporter(events)
    if kind == "smtp":
        relay = Controller(Relay(reporter), hostname="127.0.0.1", port=port)
        relay.start()
        events.put(("ready", 0.0))
        stop.wait()
        relay.stop()
    else:
        api = Server(("127.0.0.1", port), whatsapp_handler(reporter))
        thread = threading.Thread(target=api.serve_forever, daemon=True)
        thread.start()
        events.put(("ready", 0.0))
        stop.wait()
        api.shutdown()
        api.server_close()


@contextmanager
def sink(kind: str) -> Iterator[tuple[int, Accepted]]:
    """(port, what it accepted) of a sink serving in its own process, for the with block."""
    context = multiprocessing.get_context("spawn")
    events, stop = context.Queue(), context.Event()
    port = database.free_port()
    process = context.Process(target=serve, args=(kind, port, events, stop), daemon=True)
    process.start()
    if events.get(timeout=30) != ("ready", 0.0):
        raise RuntimeError(f"the {kind} sink did not start")
    accepted = Accepted()

    def collect() -> None:
        while (event := events.get()) is not None:
            key, at = event
            if key is None:
                accepted.refuse(at)
            else:
                accepted.add(key, at)

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    try:
        yield port, accepted
    finally:
        stop.set()
        process.join(30)
        events.put(None)
        collector.join(30)


@contextmanager
def providers() -> Iterator[tuple[int, str, Accepted, Accepted]]:
    """(SMTP port, WhatsApp URL, what each accepted), on 127.0.0.1, for the with block."""
    with sink("smtp") as (smtp_port, mail), sink("whatsapp") as (api_port, chat):
        yield smtp_port, f"http://127.0.0.1:{api_port}/v19.0/1", mail, chat


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def replay(dsn: str, job: str, as_of: datetime) -> int:
    """Have pg_cron run job's own entry at its next tick with as_of; the run's id."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT coalesce(max(id), 0) FROM gstjobs.runs").fetchone()
        conn.execute(
            "SELECT cron.alter_job(jobid, schedule => '* * * * *', active => true,"
            " command => format('CALL gstjobs.run_job(%%L, as_of => %%L)', %s::text,"
            " %s::timestamptz)) FROM cron.job WHERE jobname = %s AND username = 'gstjobs_runner'",
            (job, as_of, job),
        )
        try:
            deadline = time.monotonic() + 150
            while True:
                row = conn.execute(
                    "SELECT id FROM gstjobs.runs WHERE job = %s AND id > %s AND status <> 'running'"
                    " ORDER BY id LIMIT 1",
                    (job, before[0] if before else 0),
                ).fetchone()
                if row:
                    return int(row[0])
                assert time.monotonic() < deadline, f"pg_cron did not run {job}"
                time.sleep(0.5)
        finally:
            conn.execute(
                "SELECT cron.alter_job(jobid, active => false,"
                " command => format('CALL gstjobs.run_job(%%L)', %s::text))"
                " FROM cron.job WHERE jobname = %s AND username = 'gstjobs_runner'",
                (job, job),
            )


def settle(dsn: str, run_id: int) -> float:
    """Wait until every notification of the run is sent or dead; seconds waited."""
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() - started < SETTLE_LIMIT_S:
            left = conn.execute(
                "SELECT count(*) FROM gstjobs.notifications"
                " WHERE run_id = %s AND status NOT IN ('sent', 'dead')",
                (run_id,),
            ).fetchone()
            if left == (0,):
                break
            time.sleep(1)
    return round(time.monotonic() - started, 1)


def steady_day(dsn: str, day: datetime) -> None:
    """The slots of the day before, run and their messages marked sent (untimed): each slot
    of the measured day then does a steady day's work. The outbox starts empty."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM gstjobs.notifications")
        conn.execute(
            "DELETE FROM gstjobs.slots WHERE job IN ('hearing-reminders', 'deadline-alerts')"
        )
        for job, _, at in SLOTS:
            conn.execute(
                "CALL gstjobs.run_job(%s, as_of => %s)", (job, day - timedelta(days=1) + at)
            )
        conn.execute("UPDATE gstjobs.notifications SET status = 'sent', sent_at = now()")
        conn.execute("VACUUM ANALYZE gstjobs.notifications")


def measure(dsn: str, admin_dsn: str, restart: Any, day: datetime) -> dict[str, Any]:
    """The peak on the bench's database (at the state the caller left it); restart() starts
    pg_cron's launcher again (the bench stops it by dropping its database)."""
    steady_day(dsn, day)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # pg_cron runs dispatch-notifications as scheduled, and nothing else of ours
        conn.execute(
            "UPDATE cron.job SET active = (jobname = 'dispatch-notifications')"
            " WHERE username = 'gstjobs_runner'"
        )
    restart()
    with psycopg.connect(dsn, autocommit=True) as conn:
        mark = conn.execute("SELECT coalesce(max(id), 0) FROM gstjobs.runs").fetchone()
    slots: dict[str, Any] = {}
    channels: dict[str, dict[str, list[Any]]] = {}
    with providers() as (smtp_port, whatsapp_url, mail, chat):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT gstjobs.set_settings(jsonb_build_object('smtp.host', '127.0.0.1',"
                " 'smtp.port', %s::text, 'whatsapp.url', %s::text, 'whatsapp.token', 'bench'))",
                (str(smtp_port), whatsapp_url),
            )
        for job, local, at in SLOTS:
            run_id = replay(dsn, job, day + at)
            waited = settle(dsn, run_id)
            with psycopg.connect(dsn, autocommit=True) as conn:
                started = conn.execute(
                    "SELECT extract(epoch FROM started_at)::float8,"
                    " extract(epoch FROM finished_at - started_at)::float8"
                    " FROM gstjobs.runs WHERE id = %s",
                    (run_id,),
                ).fetchone()
                assert started is not None
                written = conn.execute(
                    "SELECT channel, encode(sha256(convert_to(dedupe_key, 'UTF8')), 'hex'), status"
                    " FROM gstjobs.notifications WHERE run_id = %s",
                    (run_id,),
                ).fetchall()
            slot = {
                "job": job,
                "run_id": run_id,
                "run_seconds": round(started[1], 2),
                "settled_after_s": waited,
            }
            for channel, accepted in (("email", mail), ("whatsapp", chat)):
                keys = [key[:40] for c, key, _ in written if c == channel]
                times = [accepted.times.get(key, []) for key in keys]
                latencies = [min(t) - started[0] for t in times if t]
                first = [min(t) for t in times if t]
                found = {
                    "messages": len(keys),
                    "lost": sum(1 for t in times if not t),
                    "duplicates": sum(len(t) - 1 for t in times if len(t) > 1),
                    "dead": sum(1 for c, _, s in written if c == channel and s == "dead"),
                }
                if latencies:
                    span = max(first) - min(first)
                    found["latency_s"] = summary(latencies)
                    found["per_s"] = round(len(first) / span, 1) if span > 0 else None
                slot[channel] = found
                totals = channels.setdefault(channel, {"latencies": [], "spans": [], "counts": []})
                totals["latencies"] += latencies
                totals["counts"].append(found)
                if latencies and len(first) > 1:
                    totals["spans"].append((len(first), max(first) - min(first)))
            slots[local] = slot
            print(f"  peak {local} {job}: {json.dumps(slot)}", flush=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE cron.job SET active = false WHERE username = 'gstjobs_runner'")
            runs = conn.execute(
                "SELECT count(*), max(extract(epoch FROM finished_at - started_at))::float8,"
                " sum((counts ->> 'throttled')::int), count(*) FILTER (WHERE status = 'skipped')"
                " FROM gstjobs.runs WHERE job = 'dispatch-notifications' AND id > %s",
                (mark[0] if mark else 0,),
            ).fetchone()
    result: dict[str, Any] = {"slots": slots}
    for channel, totals in channels.items():
        sent = sum(n for n, _ in totals["spans"])
        seconds = sum(s for _, s in totals["spans"])
        result[channel] = {
            "messages": sum(c["messages"] for c in totals["counts"]),
            "latency_s": summary(totals["latencies"]) if totals["latencies"] else None,
            "per_s": round(sent / seconds, 1) if seconds else None,
            "lost": sum(c["lost"] for c in totals["counts"]),
            "duplicates": sum(c["duplicates"] for c in totals["counts"]),
            "dead": sum(c["dead"] for c in totals["counts"]),
        }
    result["whatsapp"]["answered_429"] = chat.refused
    # when in its minute each came (pg_cron's tick is at :00): at a handover, or anywhere
    result["whatsapp"]["answered_429_s_after_tick"] = sorted(
        round(at % 60, 2) for at in chat.refused_at
    )
    if runs:
        result["dispatch_runs"] = {
            "count": runs[0],
            "longest_s": round(runs[1] or 0, 1),
            "throttled": runs[2] or 0,
            # a run the next tick's start found still claiming (a handover missed: a minute lost)
            "skipped": runs[3],
        }
    return result


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 1),
        "p99": round(quantile(values, 0.99), 1),
        "max": round(max(values), 1),
    }
