"""The jobs: see them (list, history), run one now (run), and pause, resume or reschedule one."""

import time
from datetime import UTC, datetime
from typing import Any

import click

from gstjobs import ops
from gstjobs.output import human_duration, render, render_one
from gstjobs.shared import (
    EXIT_FAILED,
    Context,
    echo_json_result,
    fail,
    format_option,
    reason_option,
    tz_option,
    with_context,
)

RUN_STATUSES = ("running", "succeeded", "failed", "skipped", "crashed", "cancelled", "starting")


@click.command("list")
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
            click.echo(render(ops.job_overview(conn), fmt, zone))
            return
        try:
            while True:
                table = render(ops.job_overview(conn), fmt, zone)
                click.clear()
                stamp = datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
                click.echo(f"gstjobs, {stamp}; every {watch:g} s, Ctrl-C to stop\n\n{table}")
                time.sleep(watch)
        except KeyboardInterrupt:
            click.echo()


@click.command()
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
        rows = ops.run_history(conn, job, status=status, limit=limit)
    if fmt == "table" and not verbose:
        for row in rows:
            row["error"] = (row["error"] or "").split("\n", 1)[0]
            del row["as_of"], row["dry_run"], row["reason"], row["tenant_id"]
    click.echo(render(rows, fmt, zone, empty=f"no runs of {job} yet"))


def parse_as_of(text: str | None) -> datetime | None:
    """--as-of as a moment, or a clear refusal (exit 2)."""
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


@click.command()
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
        report = ops.run_job(
            conn, job, as_of=moment, tenant_id=tenant, dry_run=dry_run, reason=reason, wait=wait
        )
    duration = report.pop("duration")
    if fmt == "json":
        click.echo(render_one(report, fmt, zone))
    else:
        show_run(report, duration, zone)
    if report["status"] == "failed":
        fail(f"{job} failed: {report['error']}", EXIT_FAILED)


def show_run(report: dict[str, Any], duration: Any, zone: Any) -> None:
    counts = report["counts"]
    summary = ", ".join(f"{k} {v}" for k, v in counts.items() if "." not in k) or "nothing"
    click.echo(
        f"{report['job']}: {report['status']} (run {report['run_id']}, {human_duration(duration)})"
        + (f": {summary}" if report["status"] == "succeeded" else "")
    )
    if report["status"] == "skipped":
        click.echo("skipped: another run of this job was in progress; --wait waits for it")
    if report.get("would_notify"):
        click.echo("\ndry run: nothing was changed; it would have notified:")
        click.echo(render(report["would_notify"], "table", zone))


@click.command()
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
    with ctx.database() as conn:
        result = ops.set_active(conn, job, False, reason)
    if not echo_json_result(result, fmt):
        click.echo(f"{job} paused" if result["changed"] else f"{job} was already paused")


@click.command()
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
    with ctx.database() as conn:
        result = ops.set_active(conn, job, True, reason)
    if not echo_json_result(result, fmt):
        click.echo(f"{job} resumed" if result["changed"] else f"{job} was already active")


@click.command()
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
    with ctx.database() as conn:
        result = ops.reschedule(conn, job, schedule, reason)
    if not echo_json_result(result, fmt):
        click.echo(
            f"{job}: {result['old_schedule']} -> {schedule} ({ops.in_words(schedule)})"
            if result["changed"]
            else f"{job} already runs at {schedule}"
        )


@click.command()
@click.argument("job")
@reason_option
@click.option(
    "--wait",
    type=click.FloatRange(min=0, max=3600),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the runs to end.",
)
@format_option
@tz_option
@with_context
def cancel(
    ctx: Context, job: str, reason: str | None, wait: float, fmt: str, tz: str | None
) -> None:
    """Cancel the running run of JOB (each one-firm run too): its statement is cancelled, the
    batch under way rolled back, and the run ends `cancelled`. Audited.

    Exit 0 when every run has ended, 1 when one is still running after --wait, 2 when no run
    of JOB is running.

    \b
    Example:
      gstjobs cancel analytics-snapshot --reason "holding a lock the firm app needs"
    """
    with ctx.database() as conn:
        zone = ctx.zone(conn, tz)
        runs = ops.cancel_job(conn, job, reason, wait)
    click.echo(render(runs, fmt, zone))
    running = [r["run_id"] for r in runs if r["status"] == "running"]
    if running:
        fail(
            f"run {', '.join(map(str, running))} of {job} is still running after {wait:g} s: "
            "it stops at its next statement, or when the one under way returns",
            EXIT_FAILED,
        )


COMMANDS = (list_jobs, history, run, pause, resume, cancel, reschedule)
