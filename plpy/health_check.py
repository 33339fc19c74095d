"""health-check: is every job running as its schedule says, and is the outbox moving?

Runs at 07:00 in the operations zone (a slot, like the firms' local-time jobs) and whenever
an operator asks. It stores a report in gstjobs.health_reports and mails the operations
recipients once per problem: a problem already in the previous report is not sent again.

Its JSON (the report, the previous problems, the counts it returns) passes as Python objects
through jsonb_plpython3u's transform, cron text is parsed without regular expressions, and
times are the server's timestamps or seconds since the epoch: json, re and datetime would be
imported afresh in every session pg_cron starts (docs/BENCHMARKS.md has what each costs).
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import enter_run, one, plan

import time

# The report's window: the 24 hours before as_of; pg_cron's runs are counted until 2 minutes
# before it, since a run starting now may not be in cron.job_run_details yet.
WINDOW = """
SELECT w.start, w.settled, extract(epoch FROM w.settled)::float8 AS settled_epoch
FROM (SELECT $1::timestamptz - interval '24 hours' AS start,
             $1::timestamptz - interval '2 minutes' AS settled) AS w
"""

# Each job with its schedule, the runs pg_cron started for it since it was scheduled (at most
# 24 h back, $1) until $2, and its failures until now ($3). cron.job_run_details has no index
# but its key and keeps 90 days: it is read once, for all jobs (not through run_history, which
# joins all of it to the ledger; docs/BENCHMARKS.md).
JOBS = """
WITH recent AS MATERIALIZED (
    SELECT jobid, runid, status, return_message, start_time
    FROM cron.job_run_details WHERE start_time >= $1 AND start_time < $3
)
SELECT j.name, c.jobid, c.schedule, c.active,
       extract(epoch FROM w.since)::float8 AS since_epoch,
       to_char(w.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS since_utc,
       (SELECT count(*) FROM recent AS d
        WHERE d.jobid = c.jobid AND d.start_time >= w.since AND d.start_time < $2) AS ticks,
       f.failures, f.last_error
FROM gstjobs.jobs AS j
LEFT JOIN cron.job AS c ON c.jobname = j.name AND c.username = 'gstjobs_runner'
CROSS JOIN LATERAL (SELECT greatest($1, j.scheduled_since) AS since) AS w
CROSS JOIN LATERAL (
    SELECT count(*) AS failures,
           (array_agg(left(failed.error, 300) ORDER BY failed.started_at DESC))[1] AS last_error
    FROM (
        -- the ledger's failed and crashed runs (runs_job_started_idx), with pg_cron's message
        -- when pg_cron saw the failure too
        SELECT r.started_at, coalesce(d.return_message, r.error, r.status) AS error
        FROM gstjobs.runs AS r
        LEFT JOIN recent AS d ON d.runid = r.cron_runid AND d.status = 'failed'
        WHERE r.job = j.name AND r.started_at >= $1 AND r.started_at < $3
          AND r.status IN ('failed', 'crashed')
        UNION ALL
        -- pg_cron's failed runs the ledger never saw: the run could not start
        SELECT d.start_time, coalesce(d.return_message, d.status)
        FROM recent AS d
        WHERE d.jobid = c.jobid AND d.status = 'failed'
          AND NOT EXISTS (SELECT FROM gstjobs.runs AS r WHERE r.cron_runid = d.runid)
    ) AS failed
) AS f
ORDER BY j.name
"""

STUCK = """
SELECT id, job, started_at FROM gstjobs.runs
WHERE status = 'running' AND started_at < $1 - make_interval(mins => $2) ORDER BY id
"""

# each job's last successful run against the median of the 20 before it, read newest first
# through runs_job_started_idx: not a sort of every run the ledger keeps (90 days)
# dispatch-notifications is not judged by its time: a run lasts as long as the outbox and the
# channels' rates need, up to dispatch.run_seconds (a stuck one is a stuck run)
DURATIONS = """
SELECT j.name AS job, d.last_seconds, d.median_seconds
FROM gstjobs.jobs AS j
CROSS JOIN LATERAL (
    SELECT (array_agg(recent.seconds ORDER BY recent.n))[1] AS last_seconds,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY recent.seconds)
               FILTER (WHERE recent.n > 1) AS median_seconds
    FROM (SELECT extract(epoch FROM r.finished_at - r.started_at) AS seconds,
                 row_number() OVER (ORDER BY r.started_at DESC, r.id DESC) AS n
          FROM gstjobs.runs AS r
          WHERE r.job = j.name AND r.status = 'succeeded' AND NOT r.dry_run
          ORDER BY r.started_at DESC, r.id DESC
          LIMIT 21) AS recent
) AS d
WHERE d.median_seconds IS NOT NULL AND j.name <> 'dispatch-notifications'
"""

# two counts, each through its partial index (notifications_claim_idx, notifications_dead_idx),
# not a read of the months of sent notifications the outbox keeps; each stops at COUNT_CAP + 1:
# a backed-up outbox is when the report matters most, and counting all of it would slow
# health-check as the backlog grows (docs/BENCHMARKS.md)
COUNT_CAP = 10_000
OUTBOX = """
SELECT (SELECT count(*) FROM (SELECT FROM gstjobs.notifications
                              WHERE status IN ('pending', 'failed')
                                AND next_attempt_at < $1 - make_interval(mins => $2)
                              LIMIT $3 + 1) AS due) AS backlog,
       (SELECT count(*) FROM (SELECT FROM gstjobs.notifications WHERE status = 'dead'
                              LIMIT $3 + 1) AS dead) AS dead
"""

# the firms a job left out of its work in the window because their data made a statement fail
# (counts.failed_firms), per job through runs_job_started_idx
FAILED_FIRMS = """
SELECT j.name AS job, (f.firm ->> 'tenant_id')::bigint AS tenant_id, count(*) AS runs,
       (array_agg(f.firm ->> 'error' ORDER BY r.started_at DESC))[1] AS last_error,
       (array_agg(f.firm ->> 'step' ORDER BY r.started_at DESC))[1] AS step
FROM gstjobs.jobs AS j
JOIN gstjobs.runs AS r ON r.job = j.name AND r.started_at >= $1 AND r.started_at < $2
CROSS JOIN LATERAL jsonb_array_elements(r.counts -> 'failed_firms') AS f (firm)
WHERE r.counts ? 'failed_firms'
GROUP BY 1, 2
ORDER BY 1, 2
"""

# what stands between each channel and delivery (plpy/settings.py), and whether anything waits
# on it (through notifications_claim_idx, which leads with the channel)
DELIVERY = "SELECT email, whatsapp FROM gstjobs.delivery_problems(false)"
WAITING = """
SELECT EXISTS (SELECT FROM gstjobs.notifications
               WHERE channel = $1 AND status IN ('pending', 'failed')) AS waiting
"""

# through slots_missed_idx (missed slots only), not a read of every slot of the days kept
MISSED_SLOTS = """
SELECT job, count(*) AS missed, min(local_date) AS first, max(local_date) AS last
FROM gstjobs.slots WHERE status = 'missed' AND due_at >= $1 AND due_at < $2
GROUP BY job
"""

SLOT = """
INSERT INTO gstjobs.slots AS s (job, tenant_id, local_date, status, due_at, run_id)
SELECT due.job, due.tenant_id, due.local_date, due.status, due.due_at, $1
FROM gstjobs.due_slots('health-check', $2, NULL) AS due
ON CONFLICT DO NOTHING
RETURNING s.status
"""

TRIGGER = "SELECT trigger FROM gstjobs.runs WHERE id = $1"

PREVIOUS = "SELECT problems FROM gstjobs.health_reports ORDER BY id DESC LIMIT 1"

SAVE = """
INSERT INTO gstjobs.health_reports (healthy, problems, report, run_id)
VALUES ($1, $2, $3, $4) RETURNING id
"""

ALERT = """
INSERT INTO gstjobs.notifications
    (tenant_id, kind, channel, recipient, subject, body, template, urgency, dedupe_key, run_id)
SELECT NULL, 'health-alert', 'email', address,
       gstjobs.fit(gstjobs.render_subject('health-alert', vars), 300, true),
       gstjobs.fit(gstjobs.render_body('health-alert', vars), 20000, false),
       jsonb_build_object('name', 'health-alert', 'params', vars), 1,
       format('health:%s:%s:%s:%s', $1, $2, $3, address), $3
FROM unnest(string_to_array(gstjobs.setting('ops.email'), ',')) AS raw (address_raw)
CROSS JOIN LATERAL (SELECT trim(address_raw) AS address) AS a
CROSS JOIN LATERAL (SELECT jsonb_build_object('problem', $4::text, 'advice', $5::text,
                           'detected_local', gstjobs.format_local($6, gstjobs.setting('ops.timezone')))
                    AS vars) AS v
WHERE a.address <> ''
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING 1
"""

FIELDS = ("minute", "hour", "day of month", "month", "day of week")
RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def is_number(text):
    """One or two ASCII digits, as a cron field's values are."""
    return 1 <= len(text) <= 2 and text.isascii() and text.isdigit()


def well_formed(part):
    """A list item of a cron field: *, n or a-b, each with an optional /n."""
    spec, slash, step = part.partition("/")
    if slash and not is_number(step):
        return False
    first, dash, last = spec.partition("-")
    return spec == "*" or (is_number(first) and (not dash or is_number(last)))


def parse_field(text, low, high, name):
    """The set of values a cron field allows: *, n, a-b, each with an optional /step, lists."""
    values = set()
    for part in text.split(","):
        if not well_formed(part):
            raise ValueError(f"{name} field {part!r} is not *, n, a-b or */n")
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            first, last = (int(v) for v in spec.split("-", 1))
        else:
            first = int(spec)
            last = high if step_text else first
        if not (low <= first <= last <= high) or step < 1:
            raise ValueError(f"{name} field {part!r} is out of range {low}-{high}")
        values.update(range(first, last + 1, step))
    return values


def parse_cron(schedule):
    """(minutes, hours, days, months, weekdays, dom_restricted, dow_restricted) of 5-field cron."""
    fields = schedule.split()
    if len(fields) != 5:
        count = len(fields)
        raise ValueError(f"it has {count} field{'' if count == 1 else 's'}, not 5")
    sets = [
        parse_field(f, lo, hi, name)
        for f, (lo, hi), name in zip(fields, RANGES, FIELDS, strict=True)
    ]
    if 7 in sets[4]:
        sets[4] = (sets[4] - {7}) | {0}
    return (*sets, fields[2] != "*", fields[4] != "*")


# the days each month has in a common year: a schedule must fire every year
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
CRON_CHARACTERS = set("0123456789*,/- ")


def cron_problem(schedule):
    """Why a schedule is not valid 5-field cron text that fires every year, or None."""
    schedule = schedule or ""
    if not set(schedule) <= CRON_CHARACTERS:
        return "it may hold only digits, *, /, -, commas and single spaces (no tab or line break)"
    if schedule != schedule.strip(" ") or "  " in schedule:
        return "its fields are separated by single spaces, with none before or after"
    try:
        parsed = parse_cron(schedule)
    except ValueError as error:
        return str(error)
    return never_fires(parsed)


def never_fires(parsed):
    """Why a schedule does not fire in every year, or None. When both day fields are
    restricted either may match (cron's rule), and every month has every weekday."""
    _, _, days, months, _, dom_restricted, dow_restricted = parsed
    if not dom_restricted or dow_restricted:
        return None
    if any(day <= MONTH_DAYS[month - 1] for month in months for day in days):
        return None
    if 2 in months and 29 in days:
        return "it fires on 29 February only, once in four years"
    return "it never fires: none of its months has those days"


def hour_matches(parsed, hour):
    """Whether a schedule fires at some minute of this hour (a time.struct_time in UTC): its
    hour, month and day fields."""
    _, hours, days, months, weekdays, dom_restricted, dow_restricted = parsed
    if hour.tm_hour not in hours or hour.tm_mon not in months:
        return False
    day_ok = hour.tm_mday in days
    weekday_ok = (hour.tm_wday + 1) % 7 in weekdays  # tm_wday: Monday 0; cron: Sunday 0
    # cron's rule: when both day fields are restricted, either may match
    if dom_restricted and dow_restricted:
        return day_ok or weekday_ok
    return day_ok and weekday_ok


def minutes_to(hour, moment):
    """The first whole minute of an hour at or after moment (both in seconds since the epoch):
    0 before the hour, 60 after it."""
    whole = int(-(-(moment - hour) // 60))  # rounded up
    return min(max(whole, 0), 60)


def expected_ticks(schedule, start, end):
    """How many times a schedule (in UTC, as pg_cron reads it) fires in [start, end), both in
    seconds since the epoch.

    Hour by hour, counting the schedule's minutes that fall in the window: 25 steps for a day,
    not 1,440 (the minute by minute loop was a large share of every report: docs/BENCHMARKS.md).
    """
    parsed = parse_cron(schedule)
    hour = start - start % 3600
    count = 0
    while hour < end:
        if hour_matches(parsed, time.gmtime(hour)):
            first, last = minutes_to(hour, start), minutes_to(hour, end)
            count += sum(1 for minute in parsed[0] if first <= minute < last)
        hour += 3600
    return count


def schedule_facts():
    """gstjobs.schedule_facts: each scheduled job's ticks in the last 24 h against its schedule,
    and the mean time between its ticks (what a metrics scrape asks: Prometheus's alerts)."""
    window = one("window", WINDOW, ["timestamptz"], [plpy.execute("SELECT now() AS now")[0]["now"]])
    facts = []
    jobs_found = plpy.execute(
        plan("jobs", JOBS, ["timestamptz", "timestamptz", "timestamptz"]),
        [window["start"], window["settled"], window["settled"]],
    )
    for job in jobs_found:
        if job["jobid"] is None:
            continue
        start, end = job["since_epoch"], window["settled_epoch"]
        expected = expected_ticks(job["schedule"], start, end) if start < end else 0
        per_day = expected_ticks(job["schedule"], end - 86400, end)
        facts.append(
            {
                "job": job["name"],
                "expected_ticks": expected,
                "ticks": job["ticks"],
                "missed_ticks": max(expected - job["ticks"], 0),
                "interval_seconds": 86400 / per_day if per_day else None,
            }
        )
    return facts


def problem(code, subject, message, advice):
    return {"code": code, "subject": subject, "message": message, "advice": advice}


def health_check(run_id, as_of, tenant_id, dry_run):
    enter_run(run_id, "health-check")
    slot = plpy.execute(plan("slot", SLOT, ["bigint", "timestamptz"]), [run_id, as_of])
    manual = one("trigger", TRIGGER, ["bigint"], [run_id])["trigger"] == "manual"
    if not manual and (len(slot) == 0 or slot[0]["status"] == "missed"):
        # polled by pg_cron: nothing to do until the 07:00 slot comes round
        return {"reports": 0, "slots_missed": len(slot)}

    # runs whose backend is gone were marked crashed by gstjobs.start_run a moment ago
    window = one("window", WINDOW, ["timestamptz"], [as_of])
    problems, jobs = check_jobs(window, as_of)
    problems += check_stuck_runs(as_of) + check_slow_runs()
    outbox_problems, outbox = check_outbox(as_of)
    problems += outbox_problems + check_delivery() + check_failed_firms(window, as_of)
    problems += check_missed_slots(window, as_of)
    report = {
        "checked_at": str(as_of),
        "window_start": str(window["start"]),
        "jobs": jobs,
        "outbox": dict(outbox),
    }
    return save_and_alert(run_id, as_of, problems, report)


def check_jobs(window, as_of):
    """Each job's ticks against its schedule, and its failures: (problems, jobs)."""
    problems, jobs = [], []
    jobs_found = plpy.execute(
        plan("jobs", JOBS, ["timestamptz", "timestamptz", "timestamptz"]),
        [window["start"], window["settled"], as_of],
    )
    for job in jobs_found:
        name = job["name"]
        entry = {"job": name, "scheduled": job["jobid"] is not None, "active": job["active"]}
        if job["jobid"] is None:
            problems.append(
                problem(
                    "not-scheduled",
                    name,
                    f"{name} is not scheduled in pg_cron",
                    "run `alembic upgrade head`, which schedules every job",
                )
            )
        else:
            start, end, ticks = job["since_epoch"], window["settled_epoch"], job["ticks"]
            expected = expected_ticks(job["schedule"], start, end) if start < end else 0
            entry.update(
                expected_ticks=expected, ticks=ticks, missed_ticks=max(expected - ticks, 0)
            )
            if expected > ticks:
                why = "it is paused" if not job["active"] else "pg_cron did not start it"
                problems.append(
                    problem(
                        "missed-ticks",
                        name,
                        f"{name} ran {ticks} of the {expected} times its schedule "
                        f"'{job['schedule']}' (UTC) called for since {job['since_utc']} UTC: {why}",
                        "`gstjobs resume " + name + "` if it was paused by mistake"
                        if not job["active"]
                        else "check that the server was up and `gstjobs doctor` passes",
                    )
                )
        if job["failures"]:
            entry["failures"] = job["failures"]
            problems.append(
                problem(
                    "failed-runs",
                    name,
                    f"{name} failed {job['failures']} time(s) in 24 h; last: {job['last_error']}",
                    f"`gstjobs history {name}` shows each error",
                )
            )
        jobs.append(entry)
    return problems, jobs


def check_stuck_runs(as_of):
    stuck_after = int(setting("health.stuck_after_minutes"))
    return [
        problem(
            "stuck-run",
            f"{run['job']}#{run['id']}",
            f"run {run['id']} of {run['job']} has been running since {run['started_at']}",
            f"`gstjobs cancel {run['job']}` stops it (the next run does the work); its timeout "
            f"(setting timeout.{run['job']}) stops it at the next run's start",
        )
        for run in plpy.execute(
            plan("stuck", STUCK, ["timestamptz", "integer"]), [as_of, stuck_after]
        )
    ]


def check_slow_runs():
    factor = float(setting("health.regression_factor"))
    return [
        problem(
            "slow-run",
            d["job"],
            f"{d['job']} took {d['last_seconds']:.1f} s, its median is {d['median_seconds']:.1f} s",
            "EXPLAIN (ANALYZE, BUFFERS) its statements; see docs/BENCHMARKS.md",
        )
        for d in plpy.execute(plan("durations", DURATIONS, []))
        if d["last_seconds"] > 1 and d["last_seconds"] > factor * d["median_seconds"]
    ]


def check_outbox(as_of):
    """A backlog and dead letters: (problems, the counts)."""
    backlog_minutes = int(setting("health.backlog_minutes"))
    outbox = one(
        "outbox",
        OUTBOX,
        ["timestamptz", "integer", "integer"],
        [as_of, backlog_minutes, COUNT_CAP],
    )
    problems = []
    if outbox["backlog"]:
        problems.append(
            problem(
                "outbox-backlog",
                "notifications",
                f"{at_most(outbox['backlog'])} notification(s) due for more than"
                f" {backlog_minutes} minutes",
                "check dispatch-notifications in `gstjobs list` and the SMTP/WhatsApp settings",
            )
        )
    if outbox["dead"]:
        problems.append(
            problem(
                "dead-letters",
                "notifications",
                f"{at_most(outbox['dead'])} notification(s) gave up after their last attempt",
                "`gstjobs outbox --status dead` lists them; `gstjobs outbox retry ID` re-queues one",
            )
        )
    return problems, outbox


def check_delivery():
    """A channel whose messages wait for a reason no retry will cure: not configured, a copy
    of the database, a secret set for another endpoint, a credential that would go in clear."""
    why = one("delivery", DELIVERY, [], [])
    return [
        problem(
            "delivery-stopped",
            channel,
            f"{channel} messages are waiting and none is sent: {why[channel]}",
            "an administrator settles it; `gstjobs doctor` shows the same, with what to do",
        )
        for channel in ("email", "whatsapp")
        if why[channel] and one("waiting", WAITING, ["text"], [channel])["waiting"]
    ]


def check_failed_firms(window, as_of):
    return [
        problem(
            "firm-failed",
            f"{f['job']} firm {f['tenant_id']}",
            f"{f['job']} left firm {f['tenant_id']} out of {f['runs']} run(s) in 24 h: its data"
            f" made the {f['step']} statement fail ({f['last_error']})",
            "every other firm's work was done; correct the firm's data the error names, and"
            f" the next run does the firm's work (`gstjobs history {f['job']}` shows each run)",
        )
        for f in plpy.execute(
            plan("failed firms", FAILED_FIRMS, ["timestamptz", "timestamptz"]),
            [window["start"], as_of],
        )
    ]


def check_missed_slots(window, as_of):
    return [
        problem(
            "missed-slots",
            m["job"],
            f"{m['job']} missed {m['missed']} local-time slot(s) ({m['first']} to {m['last']}): "
            "older than the catch-up limit when the job next ran",
            "the server or pg_cron was down; re-run by hand with --as-of if the work still matters",
        )
        for m in plpy.execute(
            plan("missed", MISSED_SLOTS, ["timestamptz", "timestamptz"]), [window["start"], as_of]
        )
    ]


def save_and_alert(run_id, as_of, problems, report):
    """Keep the report; alert ops of each problem the previous report did not have."""
    previous = plpy.execute(plan("previous", PREVIOUS, []))
    known = {(p["code"], p["subject"]) for p in previous[0]["problems"]} if previous else set()
    report_id = one(
        "save",
        SAVE,
        ["boolean", "jsonb", "jsonb", "bigint"],
        [not problems, problems, report, run_id],
    )["id"]
    alerted = 0
    for p in problems:
        if (p["code"], p["subject"]) in known:
            continue
        alerted += len(
            plpy.execute(
                plan("alert", ALERT, ["text", "text", "bigint", "text", "text", "timestamptz"]),
                [p["code"], p["subject"], run_id, p["message"], p["advice"], as_of],
            )
        )
    return {
        "reports": 1,
        "report_id": report_id,
        "healthy": not problems,
        "problems": len(problems),
        "notified": alerted,
    }


def at_most(count):
    """A count of at most COUNT_CAP + 1, as a person reads it: 12, or more than 10000."""
    return f"more than {COUNT_CAP}" if count > COUNT_CAP else str(count)


def setting(key):
    return one("setting", "SELECT gstjobs.setting($1) AS v", ["text"], [key])["v"]
