"""The gstjobs command: a thin Click front end over the views and functions of schema gstjobs."""

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import psycopg
from cron_descriptor import ExpressionDescriptor, Options
from croniter import croniter
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gstjobs.db import DSN_ENV, ConnectError, connect
from gstjobs.output import FORMATS, human_duration, human_time, render, render_one
from gstjobs.resources import named_queries
from gstjobs.schema import MIGRATIONS_HEAD, reapplied_checksums

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
QUERIES = named_queries("queries.sql")
RUN_STATUSES = ("running", "succeeded", "failed", "skipped", "crashed", "starting")
OUTBOX_STATUSES = ("pending", "sent", "failed", "dead")
# SQLSTATEs of a refused request: bad input, nothing changed
REFUSED = {"42704", "22023", "22001", "55000", "22P02", "22007", "22008", "23514"}

F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """A foreseeable failure: a message for a person and an exit code, no traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"gstjobs: {self.message}", err=True)


def fail(message: str, exit_code: int = EXIT_USAGE) -> NoReturn:
    raise Failure(message, exit_code)


def explain(error: psycopg.Error) -> tuple[str, int]:
    """What a database error means for the operator, and the exit code."""
    diag = error.diag
    text = diag.message_primary or str(error).strip().splitlines()[0]
    text = text.removeprefix("plpy.Error: ")
    if diag.message_hint:
        text += f"\nhint: {diag.message_hint}"
    if diag.sqlstate == "42501":
        if not diag.message_hint:
            text += "\nhint: connect as a member of gstjobs_operator"
        return text, EXIT_FAILED
    if diag.sqlstate in REFUSED:
        return text, EXIT_USAGE
    return text, EXIT_FAILED


class Context:
    """What every command needs: the DSN, the output format and the display zone."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn

    @contextmanager
    def database(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            raw = connect(self.dsn, autocommit=True)
        except ConnectError as error:
            fail(str(error), EXIT_UNREACHABLE)
        conn: psycopg.Connection[dict[str, Any]] = raw
        conn.row_factory = dict_row
        with conn:
            try:
                installed = conn.execute(
                    "SELECT to_regclass('gstjobs.job_overview') IS NOT NULL AS ok"
                ).fetchone()
            except psycopg.errors.InsufficientPrivilege:
                fail(
                    f"{conn.info.user} may not use gstjobs: connect as a member of "
                    "gstjobs_operator (GRANT gstjobs_operator TO you)",
                    EXIT_FAILED,
                )
            if not installed or not installed["ok"]:
                fail(
                    "gstjobs is not installed in this database (or you may not see it): run "
                    f"`alembic upgrade head` with {DSN_ENV} pointing at it",
                    EXIT_UNREACHABLE,
                )
            try:
                yield conn
            except psycopg.Error as error:
                message, code = explain(error)
                fail(message, code)

    def zone(self, conn: psycopg.Connection[dict[str, Any]], tz: str | None) -> ZoneInfo:
        name = tz
        if name is None:
            row = conn.execute(QUERIES["ops-timezone"].encode()).fetchone()
            name = row["value"] if row else "UTC"
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            fail(f"unknown time zone {name!r}: use an IANA name such as Asia/Kolkata or UTC")


def query(
    conn: psycopg.Connection[dict[str, Any]], name: str, **params: Any
) -> list[dict[str, Any]]:
    return conn.execute(QUERIES[name].encode(), params or None).fetchall()


def known_job(conn: psycopg.Connection[dict[str, Any]], job: str) -> str:
    names = [row["name"] for row in query(conn, "job-names")]
    if job not in names:
        fail(f"unknown job {job!r}; jobs are: {', '.join(names)}")
    return job


def format_option(func: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json or csv for programs (fields in docs/CLI.md).",
    )(func)


def tz_option(func: F) -> F:
    return click.option(
        "--tz",
        metavar="ZONE",
        help="Show times in this IANA zone (default: the ops.timezone setting).",
    )(func)


def reason_option(func: F) -> F:
    return click.option(
        "--reason", metavar="TEXT", help="Why; kept in the audit log (at most 1000 characters)."
    )(func)


def with_context(func: F) -> F:
    @click.pass_obj
    @functools.wraps(func)
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        return func(ctx, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


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


# ------------------------------------------------------------------------------ list ----------


def in_words(schedule: str | None) -> str:
    if not schedule:
        return ""
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(ExpressionDescriptor(schedule, options).get_description()) + " (UTC)"
    except Exception:  # a description is a courtesy; the schedule itself is shown anyway
        return ""


def next_run(schedule: str | None, active: bool, now: datetime) -> datetime | None:
    if not schedule or not active:
        return None
    try:
        moment = croniter(schedule, now).get_next(datetime)
    except (ValueError, KeyError):
        return None
    return moment if isinstance(moment, datetime) else None


def overview(conn: psycopg.Connection[dict[str, Any]]) -> list[dict[str, Any]]:
    ops_zone = query(conn, "ops-timezone")[0]["value"]
    now = datetime.now(UTC)
    rows = []
    for job in query(conn, "job-overview"):
        slot = ""
        if job["local_time"] is not None:
            where = "firm time" if job["job"] != "health-check" else ops_zone
            slot = f"{job['local_time']:%H:%M} {where}"
        state = "active" if job["active"] else ("paused" if job["scheduled"] else "not scheduled")
        rows.append(
            {
                "job": job["job"],
                "schedule": job["schedule"],
                "in_words": in_words(job["schedule"]),
                "local_slot": slot,
                "state": state,
                "last_status": job["last_status"],
                "last_run": job["last_started_at"],
                "last_duration": job["last_duration"],
                "next_run": next_run(job["schedule"], job["active"], now),
                "failures_24h": job["failures_24h"],
            }
        )
    return rows


@cli.command("list")
@format_option
@tz_option
@click.option(
    "--watch",
    type=click.FloatRange(min=0.5),
    is_flag=False,
    flag_value=5.0,
    default=None,
    metavar="[SECONDS]",
    help="Redraw every SECONDS (5 if not given) until Ctrl-C.",
)
@with_context
def list_jobs(ctx: Context, fmt: str, tz: str | None, watch: float | None) -> None:
    """Every job: schedule, local slot, state, last run, next run, failures in 24 h.

    Times are shown in --tz (default: the ops.timezone setting); pg_cron reads schedules in UTC.

    \b
    Example:
      gstjobs list --tz Asia/Kolkata
      gstjobs list --watch 10
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        if watch is None:
            click.echo(render(overview(conn), fmt, zone))
            return
        try:
            while True:
                table = render(overview(conn), fmt, zone)
                click.clear()
                stamp = datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
                click.echo(f"gstjobs, {stamp}; every {watch:g} s, Ctrl-C to stop\n\n{table}")
                time.sleep(watch)
        except KeyboardInterrupt:
            click.echo()


# ------------------------------------------------------------------------------ history -------


@cli.command()
@click.argument("job")
@click.option("--limit", type=click.IntRange(min=1, max=10000), default=10, show_default=True)
@click.option("--status", type=click.Choice(RUN_STATUSES), help="Only runs of this status.")
@click.option("--verbose", "-v", is_flag=True, help="Whole error messages, not their first line.")
@format_option
@tz_option
@with_context
def history(
    ctx: Context, job: str, limit: int, status: str | None, verbose: bool, fmt: str, tz: str | None
) -> None:
    """A job's runs, newest first: pg_cron's ticks joined with the run ledger, and manual runs.

    \b
    Example:
      gstjobs history sla-check --limit 20 --status failed -v
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        known_job(conn, job)
        rows = query(conn, "run-history", job=job, status=status, limit=limit)
        if fmt == "table" and not verbose:
            for row in rows:
                row["error"] = (row["error"] or "").split("\n", 1)[0]
                del row["as_of"], row["dry_run"], row["reason"], row["tenant_id"]
        click.echo(render(rows, fmt, zone, empty=f"no runs of {job} yet"))


# ------------------------------------------------------------------------------ run -----------


def parse_as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--as-of {text!r} is not an ISO 8601 time; write e.g. 2026-11-20T08:05:00+05:30")
    if moment.tzinfo is None:
        fail(f"--as-of {text!r} has no UTC offset; write e.g. {text}+05:30 or {text}Z")
    if moment > datetime.now(UTC):
        fail(f"--as-of {text} is in the future; a job replays a moment that has passed")
    return moment


@cli.command()
@click.argument("job")
@click.option("--tenant", type=click.IntRange(min=1), help="Only this firm (its id).")
@click.option(
    "--as-of", "as_of", metavar="TIME", help="Replay a past moment (ISO 8601 with offset)."
)
@click.option("--dry-run", is_flag=True, help="Show what it would do and notify; change nothing.")
@reason_option
@click.option(
    "--wait", is_flag=True, help="If the job is running, wait for it instead of skipping."
)
@format_option
@tz_option
@with_context
def run(
    ctx: Context,
    job: str,
    tenant: int | None,
    as_of: str | None,
    dry_run: bool,
    reason: str | None,
    wait: bool,
    fmt: str,
    tz: str | None,
) -> None:
    """Run JOB now, as pg_cron would; recorded as a manual run and in the audit log.

    Exit 0 when it succeeded or was skipped (another run was in progress), 1 when it failed.

    \b
    Example:
      gstjobs run hearing-reminders --as-of 2026-11-19T08:05:00+05:30 --dry-run
      gstjobs run sla-check --tenant 42 --reason "client escalation"
    """
    moment = parse_as_of(as_of)
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        known_job(conn, job)
        called = query(
            conn,
            "run-job",
            job=job,
            as_of=moment,
            tenant_id=tenant,
            dry_run=dry_run,
            reason=reason,
            wait=wait,
        )
        result = query(conn, "run-result", run_id=called[0]["run_id"])[0]
    counts = result["counts"] or {}
    would = counts.pop("would_notify", None)
    report = {
        "job": result["job"],
        "run_id": result["run_id"],
        "status": result["status"],
        "counts": counts,
        "started_at": result["started_at"],
        "finished_at": result["finished_at"],
    }
    if result["error"]:
        report["error"] = result["error"]
    if would is not None:
        report["would_notify"] = would
    if fmt == "json":
        click.echo(render_one(report, fmt, zone))
    else:
        summary = ", ".join(f"{k} {v}" for k, v in counts.items() if "." not in k) or "nothing"
        click.echo(
            f"{job}: {result['status']} (run {result['run_id']}, "
            f"{human_duration(result['duration'])})"
            + (f": {summary}" if result["status"] == "succeeded" else "")
        )
        if result["status"] == "skipped":
            click.echo("skipped: another run of this job was in progress; --wait waits for it")
        if would:
            click.echo("\ndry run: nothing was changed; it would have notified:")
            click.echo(render(would, "table", zone))
    if result["status"] == "failed":
        fail(f"{job} failed: {result['error']}", EXIT_FAILED)


# ------------------------------------------------------------------------------ pause ... -----


def change(ctx: Context, name: str, fmt: str, **params: Any) -> dict[str, Any]:
    with ctx.database() as conn:
        known_job(conn, params["job"])
        result: dict[str, Any] = query(conn, name, **params)[0]["result"]
        if fmt == "json":
            click.echo(render_one(result, fmt, ZoneInfo("UTC")))
        return result


@cli.command()
@click.argument("job")
@reason_option
@format_option
@with_context
def pause(ctx: Context, job: str, reason: str | None, fmt: str) -> None:
    """Stop pg_cron from starting JOB until `gstjobs resume JOB`.

    \b
    Example:
      gstjobs pause deadline-alerts --reason "holiday calendar being corrected"
    """
    result = change(ctx, "set-active", fmt, job=job, active=False, reason=reason)
    if fmt != "json":
        click.echo(f"{job} paused" if result["changed"] else f"{job} was already paused")


@cli.command()
@click.argument("job")
@reason_option
@format_option
@with_context
def resume(ctx: Context, job: str, reason: str | None, fmt: str) -> None:
    """Let pg_cron start JOB on its schedule again.

    \b
    Example:
      gstjobs resume deadline-alerts
    """
    result = change(ctx, "set-active", fmt, job=job, active=True, reason=reason)
    if fmt != "json":
        click.echo(f"{job} resumed" if result["changed"] else f"{job} was already active")


@cli.command()
@click.argument("job")
@click.argument("schedule", metavar="'CRON'")
@reason_option
@format_option
@with_context
def reschedule(ctx: Context, job: str, schedule: str, reason: str | None, fmt: str) -> None:
    """Give JOB a new schedule: five cron fields, in UTC, checked before pg_cron sees them.

    \b
    Example:
      gstjobs reschedule purge-history '30 20 * * *'
    """
    result = change(ctx, "reschedule", fmt, job=job, schedule=schedule, reason=reason)
    if fmt != "json":
        click.echo(
            f"{job}: {result['old_schedule']} -> {schedule} ({in_words(schedule)})"
            if result["changed"]
            else f"{job} already runs at {schedule}"
        )


# ------------------------------------------------------------------------------ health --------


@cli.command()
@click.option(
    "--run",
    "run_now",
    is_flag=True,
    help="Run health-check now instead of showing the last report.",
)
@format_option
@tz_option
@with_context
def health(ctx: Context, run_now: bool, fmt: str, tz: str | None) -> None:
    """The latest health report, problems first, each with what to do. Exit 1 when unhealthy.

    \b
    Example:
      gstjobs health --run || page-the-on-call-person
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        if run_now:
            query(
                conn,
                "run-job",
                job="health-check",
                as_of=None,
                tenant_id=None,
                dry_run=False,
                reason="gstjobs health --run",
                wait=True,
            )
        reports = query(conn, "health-latest")
    if not reports:
        fail("no health report yet: `gstjobs health --run` makes one", EXIT_FAILED)
    report = reports[0]
    problems = report["problems"]
    if fmt == "json":
        click.echo(render_one(report, fmt, zone))
    elif fmt == "csv":
        click.echo(render(problems, fmt, zone))
    else:
        verdict = "HEALTHY" if report["healthy"] else f"UNHEALTHY: {len(problems)} problem(s)"
        click.echo(f"{verdict} (report {report['id']}, {human_time(report['created_at'], zone)})")
        for problem in problems:
            click.echo(f"\n- {problem['message']}\n  what to do: {problem['advice']}")
        jobs = report["report"].get("jobs", [])
        if jobs:
            click.echo("\n" + render(jobs, "table", zone))
    if not report["healthy"]:
        sys.exit(EXIT_FAILED)


# ------------------------------------------------------------------------------ outbox --------


@cli.group(invoke_without_command=True)
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
    """Notifications waiting, sent, failed or dead, newest first.

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
        rows = query(conn, "outbox-list", status=status, tenant_id=tenant, kind=kind, limit=limit)
    if fmt == "table":
        rows = [
            {
                k: row[k]
                for k in (
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
            }
            | {"subject": (row["subject"] or "")[:60]}
            for row in rows
        ]
    click.echo(render(rows, fmt, zone, empty="no notifications"))


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
        rows = query(conn, "outbox-show", id=notification_id)
    if not rows:
        fail(f"no notification {notification_id}")
    click.echo(render_one(rows[0], fmt, zone))


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
        result = query(conn, "outbox-retry", id=notification_id, reason=reason)[0]["result"]
    if fmt == "json":
        click.echo(render_one(result, fmt, ZoneInfo("UTC")))
    else:
        click.echo(f"notification {notification_id}: {result['old_status']} -> pending")


# ------------------------------------------------------------------------------ config --------


@cli.group()
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
        rows = query(conn, "config-list")
    if fmt == "table":
        rows = [{k: row[k] for k in ("key", "value", "is_set", "description")} for row in rows]
    click.echo(render(rows, fmt, zone))


def known_key(conn: psycopg.Connection[dict[str, Any]], key: str) -> None:
    keys = [row["key"] for row in query(conn, "config-keys")]
    if key not in keys:
        fail(f"unknown setting {key!r}; settings are: {', '.join(keys)}")


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
        known_key(conn, key)
        row = query(conn, "config-get", key=key)[0]
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
        for key in changes:
            known_key(conn, key)
        results = query(conn, "config-set", changes=Jsonb(changes), reason=reason)[0]["result"]
    if fmt == "json":
        # one setting: its object, as before; several: a list of them
        utc = ZoneInfo("UTC")
        click.echo(
            render_one(results[0], fmt, utc) if len(results) == 1 else render(results, fmt, utc)
        )
    else:
        for result in results:
            click.echo(f"{result['key']} = {result['value']}")


# ------------------------------------------------------------------------------ doctor --------


@cli.command()
@format_option
@with_context
def doctor(ctx: Context, fmt: str) -> None:
    """Check the server and the installation; say how to fix each failure. Exit 1 on any.

    \b
    Example:
      gstjobs doctor
    """
    with ctx.database() as conn:
        checks = query(conn, "doctor-facts")
        version = query(conn, "migration-version")
        at = version[0]["version_num"] if version else None
        checks.append(
            {
                "name": "migrations at head",
                "ok": at == MIGRATIONS_HEAD,
                "detail": f"at {at}, this gstjobs expects {MIGRATIONS_HEAD}",
                "fix": "run `alembic upgrade head` with this version of gstjobs",
            }
        )
        installed = {row["name"]: row["checksum"] for row in query(conn, "installed-checksums")}
        differs = [n for n, c in reapplied_checksums().items() if installed.get(n) != c]
        checks.append(
            {
                "name": "functions and views current",
                "ok": not differs,
                "detail": "as in sql/ and plpy/"
                if not differs
                else "differ: " + ", ".join(differs),
                "fix": "run `alembic upgrade head`, which re-applies them",
            }
        )
    failed = [c for c in checks if not c["ok"]]
    if fmt == "table":
        for check in checks:
            mark = "ok  " if check["ok"] else "FAIL"
            click.echo(f"{mark}  {check['name']}: {check['detail']}")
            if not check["ok"]:
                click.echo(f"      fix: {check['fix']}")
        click.echo(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed")
    else:
        click.echo(render(checks, fmt, ZoneInfo("UTC")))
    if failed:
        sys.exit(EXIT_FAILED)
