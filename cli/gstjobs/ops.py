"""What operators do with gstjobs, as plain functions over a connection: the CLI calls these
(and so will the dashboard) and renders what they return. Data in, data out: no Click, no
printing; the database's refusals are raised as psycopg errors for the caller to explain."""

import csv
import time
from datetime import UTC, date, datetime
from datetime import time as TimeOfDay
from importlib import resources
from typing import Any

import psycopg
from cron_descriptor import ExpressionDescriptor, Options
from croniter import croniter
from psycopg.types.json import Jsonb

from gstjobs.resources import named_queries
from gstjobs.schema import MIGRATIONS_HEAD, reapplied_checksums

Connection = psycopg.Connection[dict[str, Any]]
Row = dict[str, Any]
QUERIES = named_queries("queries.sql")


def query(conn: Connection, query_name: str, /, **params: Any) -> list[Row]:
    """The rows of a named query of sql/queries.sql (its parameters by name: name= too)."""
    return conn.execute(QUERIES[query_name].encode(), params or None).fetchall()


def answer(conn: Connection, query_name: str, /, **params: Any) -> Row:
    """What the function a change calls answered: the `result` of a named query's one row."""
    result: Row = query(conn, query_name, **params)[0]["result"]
    return result


def ops_zone(conn: Connection) -> str:
    """The operations team's zone (setting ops.timezone): where times are shown by default."""
    rows = query(conn, "ops-timezone")
    return str(rows[0]["value"]) if rows else "UTC"


# ------------------------------------------------------------------ schedules ----------------


def in_words(schedule: str | None) -> str:
    """A cron schedule in plain words, e.g. 'Every minute (UTC)'; '' when it has none."""
    if not schedule:
        return ""
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(ExpressionDescriptor(schedule, options).get_description()) + " (UTC)"
    except Exception:  # a description is a courtesy; the schedule itself is shown anyway
        return ""


def next_run(schedule: str | None, active: bool, now: datetime) -> datetime | None:
    """When pg_cron next starts a job with this schedule (in UTC), or None when it will not."""
    if not schedule or not active:
        return None
    try:
        moment = croniter(schedule, now).get_next(datetime)
    except (ValueError, KeyError):
        return None
    return moment if isinstance(moment, datetime) else None


# ------------------------------------------------------------------ jobs ---------------------


def job_overview(conn: Connection, now: datetime | None = None) -> list[Row]:
    """Every job: schedule (and in words), local slot, state, last run, next run, failures in
    24 h; the view gstjobs.job_overview with what only Python can add (the next run)."""
    now = now or datetime.now(UTC)
    zone = ops_zone(conn)
    rows = []
    for job in query(conn, "job-overview"):
        slot = ""
        if job["local_time"] is not None:
            where = "firm time" if job["job"] != "health-check" else zone
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


def run_history(
    conn: Connection, job: str, status: str | None = None, limit: int = 10
) -> list[Row]:
    """A job's runs, newest first (gstjobs.run_history); an unknown job is refused (42704)."""
    query(conn, "known-job", job=job)
    return query(conn, "run-history", job=job, status=status, limit=limit)


def run_job(
    conn: Connection,
    job: str,
    *,
    as_of: datetime | None = None,
    tenant_id: int | None = None,
    dry_run: bool = False,
    reason: str | None = None,
    wait: bool = False,
) -> Row:
    """Run a job now through CALL gstjobs.run_job, as pg_cron does; the run as recorded:
    {job, run_id, status, counts, started_at, finished_at, duration} with error when it failed
    and would_notify for a dry run."""
    # What a run needs of its session, as the runner's role has it (revision 0020), whatever
    # the database's or the login's defaults: no statement_timeout, which counts the whole CALL
    # (a run stops at its job's own timeout, timeout.<job>), and READ COMMITTED, which the jobs'
    # claims and guards are written for. Back to the session's defaults after the run.
    conn.execute("SET statement_timeout = 0; SET default_transaction_isolation = 'read committed'")
    try:
        called = query(
            conn,
            "run-job",
            job=job,
            as_of=as_of,
            tenant_id=tenant_id,
            dry_run=dry_run,
            reason=reason,
            wait=wait,
        )
    finally:
        conn.execute("RESET statement_timeout; RESET default_transaction_isolation")
    result = query(conn, "run-result", run_id=called[0]["run_id"])[0]
    counts = dict(result["counts"] or {})
    would = counts.pop("would_notify", None)
    report: Row = {
        "job": result["job"],
        "run_id": result["run_id"],
        "status": result["status"],
        "counts": counts,
        "started_at": result["started_at"],
        "finished_at": result["finished_at"],
        "duration": result["duration"],
    }
    if result["error"]:
        report["error"] = result["error"]
    if would is not None:
        report["would_notify"] = would
    return report


def set_active(conn: Connection, job: str, active: bool, reason: str | None = None) -> Row:
    """Pause (False) or resume (True) a job in pg_cron; audited. {job, was_active, active,
    changed}."""
    return answer(conn, "set-active", job=job, active=active, reason=reason)


def cancel_job(
    conn: Connection, job: str, reason: str | None = None, wait: float = 30.0
) -> list[Row]:
    """Cancel the running runs of a job (audited), then wait up to `wait` seconds for them to
    end; each run as it is then: {run_id, tenant_id, status, error, started_at, finished_at,
    duration}. A job with no run running is refused (55000)."""
    result = answer(conn, "cancel-job", job=job, reason=reason)
    run_ids = [run["run_id"] for run in result["runs"]]
    deadline = time.monotonic() + wait
    while True:
        runs = query(conn, "runs-state", run_ids=run_ids)
        if all(r["status"] != "running" for r in runs) or time.monotonic() >= deadline:
            return runs
        time.sleep(0.2)


def reschedule(conn: Connection, job: str, schedule: str, reason: str | None = None) -> Row:
    """Give a job a new schedule, checked by the database first; audited. {job, old_schedule,
    schedule, changed}."""
    return answer(conn, "reschedule", job=job, schedule=schedule, reason=reason)


# ------------------------------------------------------------------ health -------------------


def latest_health(conn: Connection, run_first: bool = False) -> Row | None:
    """The latest health report (health-check run now first, when asked), or None."""
    if run_first:
        run_job(conn, "health-check", reason="gstjobs health --run", wait=True)
    reports = query(conn, "health-latest")
    return reports[0] if reports else None


def adopt_installation(conn: Connection, reason: str | None = None) -> Row:
    """Confirm this database as the production one (a copy starts sending); admins only,
    audited. {database, system_identifier, was_a_copy}."""
    return answer(conn, "adopt-installation", reason=reason)


def preflight(conn: Connection) -> list[Row]:
    """Before installing: what the server and this login must offer, {name, ok, detail, fix,
    blocking} each (sql/preflight.sql); gstjobs need not be installed."""
    from gstjobs import preflight as checks

    return checks.checks(conn)


def doctor(conn: Connection) -> list[Row]:
    """The server's checks and this installation's: {name, ok, detail, fix} each."""
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
            "detail": "as in sql/ and plpy/" if not differs else "differ: " + ", ".join(differs),
            "fix": "run `alembic upgrade head`, which re-applies them",
        }
    )
    return checks


# ------------------------------------------------------------------ outbox -------------------


def outbox(
    conn: Connection,
    status: str | None = None,
    tenant_id: int | None = None,
    kind: str | None = None,
    limit: int = 20,
) -> list[Row]:
    """Notifications, newest first, filtered (gstjobs.outbox)."""
    return query(conn, "outbox-list", status=status, tenant_id=tenant_id, kind=kind, limit=limit)


def notification(conn: Connection, notification_id: int) -> Row | None:
    """One notification, or None."""
    rows = query(conn, "outbox-show", id=notification_id)
    return rows[0] if rows else None


def retry_notification(conn: Connection, notification_id: int, reason: str | None = None) -> Row:
    """Re-queue a dead or failed notification; audited. {id, old_status, status}."""
    return answer(conn, "outbox-retry", id=notification_id, reason=reason)


# ------------------------------------------------------------------ config -------------------


def settings(conn: Connection) -> list[Row]:
    """Every setting, secrets masked (gstjobs.configuration)."""
    return query(conn, "config-list")


def setting(conn: Connection, key: str) -> Row:
    """One setting, secrets masked; an unknown key is refused (42704)."""
    query(conn, "known-setting", key=key)
    return query(conn, "config-get", key=key)[0]


def change_settings(
    conn: Connection, changes: dict[str, str], reason: str | None = None
) -> list[Row]:
    """Change settings together, checked by the database, all or none; audited. One
    {key, old, value} per key (secrets: value '********')."""
    results: list[Row] = query(conn, "config-set", changes=Jsonb(changes), reason=reason)[0][
        "result"
    ]
    return results


# ------------------------------------------------------------------ firms --------------------


def firms(conn: Connection) -> list[Row]:
    """Every firm: zone, delivery preferences, whether disabled, its size (gstjobs.firms)."""
    return query(conn, "firm-list")


def add_firm(
    conn: Connection,
    name: str,
    timezone: str = "Asia/Kolkata",
    whatsapp_enabled: bool = False,
    email_from: str | None = None,
    reply_to: str | None = None,
    reason: str | None = None,
) -> Row:
    """Add a firm (provisioners only; audited). {id, name, timezone, whatsapp_enabled}."""
    return answer(
        conn,
        "firm-add",
        name=name,
        timezone=timezone,
        whatsapp_enabled=whatsapp_enabled,
        email_from=email_from,
        reply_to=reply_to,
        reason=reason,
    )


def set_firm_disabled(
    conn: Connection, firm_id: int, disabled: bool, reason: str | None = None
) -> Row:
    """Disable (True) or enable (False) a firm: a disabled firm gets no new work from any job.
    {id, disabled, changed}."""
    return answer(conn, "firm-set-disabled", id=firm_id, disabled=disabled, reason=reason)


# ------------------------------------------------------------------ deadlines, events, rules --


def deadlines(
    conn: Connection,
    tenant_id: int | None = None,
    case_id: int | None = None,
    due_within: int | None = None,
    include_closed: bool = False,
    limit: int = 200,
) -> list[Row]:
    """Deadlines, soonest safe date first (gstjobs.deadline_list): each with its rule, section,
    event, legal last day, safe date, condonable until, status and origin."""
    return query(
        conn,
        "deadline-list",
        tenant_id=tenant_id,
        case_id=case_id,
        due_within=due_within,
        include_closed=include_closed,
        limit=limit,
    )


def events(
    conn: Connection, tenant_id: int, case_id: int | None = None, limit: int = 200
) -> list[Row]:
    """A firm's case events, newest first, with how many deadlines each gave."""
    return query(conn, "event-list", tenant_id=tenant_id, case_id=case_id, limit=limit)


def record_event(
    conn: Connection,
    tenant_id: int,
    case_id: int,
    kind: str,
    event_on: date,
    document_ref: str | None = None,
    notice_period_days: int | None = None,
    financial_year: str | None = None,
    reason: str | None = None,
) -> Row:
    """Record an event on a firm's case (audited): the event with its deadlines."""
    return answer(
        conn,
        "event-add",
        tenant_id=tenant_id,
        case_id=case_id,
        kind=kind,
        event_on=event_on,
        document_ref=document_ref,
        notice_period_days=notice_period_days,
        financial_year=financial_year,
        reason=reason,
    )


def correct_event(
    conn: Connection, tenant_id: int, event_id: int, changes: Row, reason: str | None = None
) -> Row:
    """Correct an event (audited): the event with its deadlines as they now are."""
    return answer(
        conn,
        "event-correct",
        tenant_id=tenant_id,
        event_id=event_id,
        changes=Jsonb(changes),
        reason=reason,
    )


def remove_event(conn: Connection, tenant_id: int, event_id: int, reason: str | None = None) -> Row:
    """Remove an event recorded in error (audited): {id, removed, deadlines_kept}."""
    return answer(conn, "event-remove", tenant_id=tenant_id, event_id=event_id, reason=reason)


def rules(conn: Connection) -> list[Row]:
    """Every statutory rule, with how many notified dates it has in force."""
    return query(conn, "rule-list")


def rule(conn: Connection, key: str) -> Row | None:
    """One rule with its notified dates, or None."""
    found = query(conn, "rule-show", key=key)
    if not found:
        return None
    shown: Row = found[0]["rule"]
    shown["notified_dates"] = query(conn, "rule-notified-dates", key=key)
    return shown


def define_notified_date(conn: Connection, notified: Row, reason: str | None = None) -> Row:
    """Add (no id) or change a notified date (audited); the deadlines it covers are recomputed."""
    return answer(conn, "notified-date-define", notified=Jsonb(notified), reason=reason)


# ------------------------------------------------------------------ calendars ----------------

SHIPPED_HOLIDAYS = "holidays-{year}-central-delhi.csv"


def shipped_holidays(year: int) -> tuple[list[Row], str]:
    """The holidays shipped for a year (cli/gstjobs/data/) and the file's note of its source;
    FileNotFoundError when none is shipped for that year."""
    text = resources.files("gstjobs").joinpath("data", SHIPPED_HOLIDAYS.format(year=year))
    lines = text.read_text(encoding="utf-8").splitlines()
    source = " ".join(line.lstrip("# ") for line in lines if line.startswith("#"))
    rows = [dict(row) for row in csv.DictReader(line for line in lines if not line.startswith("#"))]
    return rows, source


def shipped_holiday_years() -> list[int]:
    """The years a holiday file is shipped for."""
    names = (entry.name for entry in resources.files("gstjobs").joinpath("data").iterdir())
    return sorted(int(name.split("-")[1]) for name in names if name.startswith("holidays-"))


def calendars(conn: Connection, tenant_id: int) -> list[Row]:
    """A firm's calendars and their holidays."""
    return query(conn, "calendar-list", tenant_id=tenant_id)


def add_holidays(
    conn: Connection,
    tenant_id: int,
    forum: str | None,
    holidays: list[Row],
    reason: str | None = None,
) -> Row:
    """Add holidays ({on, name}) to a firm's calendar for a forum (audited; made if missing):
    {calendar_id, calendar, forum, added, already_there}."""
    return answer(
        conn,
        "holidays-add",
        tenant_id=tenant_id,
        forum=forum,
        holidays=Jsonb(holidays),
        reason=reason,
    )


def remove_holidays(
    conn: Connection, tenant_id: int, forum: str | None, days: list[date], reason: str | None = None
) -> Row:
    """Remove holidays from a firm's calendar for a forum (audited): {calendar_id, removed}."""
    return answer(
        conn, "holidays-remove", tenant_id=tenant_id, forum=forum, days=days, reason=reason
    )


def set_closed_weekdays(
    conn: Connection,
    tenant_id: int,
    forum: str | None,
    weekdays: list[int],
    reason: str | None = None,
) -> Row:
    """Set the weekdays a firm's forum is closed (audited; the calendar made if missing):
    {calendar_id, calendar, forum, old, closed_weekdays}."""
    return answer(
        conn,
        "closed-weekdays-set",
        tenant_id=tenant_id,
        forum=forum,
        weekdays=weekdays,
        reason=reason,
    )


# ------------------------------------------------------------------ members' choices --------
def choices(conn: Connection, tenant_id: int, member_id: int | None) -> list[Row]:
    """The choices that apply to a firm (member None) or a member, per kind of notification."""
    return query(conn, "prefs-show", tenant_id=tenant_id, member_id=member_id)


def notification_kinds(conn: Connection) -> dict[str, bool]:
    """The kinds a member may choose channels for, each with whether it may go by WhatsApp."""
    return {row["kind"]: row["by_whatsapp"] for row in query(conn, "notification-kinds")}


def set_choice(
    conn: Connection,
    tenant_id: int,
    member_id: int | None,
    kind: str,
    choice: Row | None,
    reason: str | None = None,
) -> Row:
    """Set a firm's (member None) or a member's choice for a kind: the fields given over what
    applies now; None removes it (audited): {firm_id, member_id, kind, email, whatsapp, ...}."""
    return answer(
        conn,
        "prefs-choice-set",
        tenant_id=tenant_id,
        member_id=member_id,
        kind=kind,
        choice=None if choice is None else Jsonb(choice),
        reason=reason,
    )


def set_digest_time(
    conn: Connection, tenant_id: int, member_id: int | None, times: Row, reason: str | None = None
) -> Row:
    """Set a firm's (member None) or a member's digest time and/or days, {"digest_at": "07:30",
    "digest_days": [1, 2, 3, 4, 5]}; a member's None: the firm's again (audited)."""
    return answer(
        conn,
        "prefs-digest-set",
        tenant_id=tenant_id,
        member_id=member_id,
        times=Jsonb(times),
        reason=reason,
    )


def set_quiet_hours(
    conn: Connection,
    tenant_id: int,
    member_id: int | None,
    quiet: tuple[TimeOfDay, TimeOfDay] | None,
    reason: str | None = None,
) -> Row:
    """Set a firm's (member None) or a member's quiet hours; None: the firm's again (audited)."""
    quiet_from, quiet_until = quiet or (None, None)
    return answer(
        conn,
        "prefs-quiet-set",
        tenant_id=tenant_id,
        member_id=member_id,
        quiet_from=quiet_from,
        quiet_until=quiet_until,
        reason=reason,
    )
