"""Run one toolkit job: the ledger row committed first, the job's body in committed batches,
the outcome recorded with the last batch's effects.

Three entry points, one door. gstjobs.run_job (run_job below) runs with its caller's rights,
because a procedure that commits may not be SECURITY DEFINER. Its two privileged steps,
gstjobs.run_begin (begin) and gstjobs.run_batch (batch), are SECURITY DEFINER and refuse to
work unless run_job's code is running in this session: run_job sets a mark in GD, PL/Python's
per-session dictionary, which no SQL statement can reach and only functions created by a
superuser can write. So the runner and operators, who must be able to execute the steps for
run_job to call them, can do nothing with them that CALL gstjobs.run_job would not do.

Counts stay jsonb from the body to the ledger, added up in SQL (gstjobs.add_counts): the
runner never parses JSON, so a run does not import json (and re) in every new session pg_cron
starts (docs/BENCHMARKS.md has what that costs).
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import JOB_ARG_TYPES, plan

MARK = "gstjobs.run_job"

# run_job's statements run as its caller, with the caller's search_path: every name and type
# is schema-qualified, so nothing the caller created (a pg_temp type named text, say) is used.
BEGIN = "SELECT run_id, acquired FROM gstjobs.run_begin($1, $2, $3, $4, $5, $6)"
BEGIN_TYPES = [
    "pg_catalog.text",
    "pg_catalog.timestamptz",
    "pg_catalog.int8",
    "pg_catalog.bool",
    "pg_catalog.text",
    "pg_catalog.bool",
]
BATCH = "SELECT gstjobs.run_batch($1) AS done"
PAUSE = "SELECT pg_catalog.pg_sleep(0.2)"


def run_job(job, as_of, tenant_id, dry_run, reason, wait):
    """CALL gstjobs.run_job: returns the procedure's INOUT run_id, as PL/Python wants it."""
    GD[MARK] = True
    try:
        started = begin_as_caller([job, as_of, tenant_id, dry_run, reason, wait])
        while started["run_id"] is None:
            # --wait: the job is running; ask again shortly, with nothing held meanwhile
            plpy.commit()
            plpy.execute(plan("pause", PAUSE, []))
            started = begin_as_caller([job, as_of, tenant_id, dry_run, reason, wait])
        # The ledger row is visible (status running, or skipped) before any work begins.
        plpy.commit()
        if started["acquired"]:
            batch_plan = plan("batch", BATCH, ["pg_catalog.int8"])
            # each batch commits its effects with the run's counts; the last one its outcome
            while not plpy.execute(batch_plan, [started["run_id"]])[0]["done"]:
                plpy.commit()
            plpy.commit()
        return {"run_id": started["run_id"]}
    finally:
        GD.pop(MARK, None)


def begin_as_caller(args):
    try:
        return plpy.execute(plan("begin", BEGIN, BEGIN_TYPES), args)[0]
    except plpy.SPIError as error:
        # A refused request (unknown job, future as_of, ...) reaches the caller as it was
        # raised: same SQLSTATE, message, detail and hint (PL/Python adds 'plpy.Error: '
        # before the message and its traceback to the context; the CLI shows neither).
        reraise(error)


# ------------------------------------------------------------------ the privileged steps ------
# These run as gstjobs_owner with search_path pg_catalog, pg_temp.

START = "SELECT run_id, acquired FROM gstjobs.start_run($1, $2, $3, $4, $5, $6)"

# With the run's row, the batch's text styles: a date or a time in text (a notification's key
# is format('...%s', day); Python gets as_of as text) is written the same way whatever the
# caller's session has (a DBA's datestyle 'SQL, DMY', a client's PGDATESTYLE wrote 20/11/2026
# where other runs wrote 2026-11-20). Local to the batch's transaction; set as this statement
# runs, before its row reaches Python as text.
RUN = """
SELECT r.job, j.body::text AS body, r.as_of, r.tenant_id, r.dry_run
FROM (SELECT pg_catalog.set_config('datestyle', 'ISO, YMD', true),
             pg_catalog.set_config('intervalstyle', 'postgres', true)) AS styles,
     gstjobs.runs AS r
JOIN gstjobs.jobs AS j ON j.name = r.job
WHERE r.id = $1 AND r.status = 'running' AND r.backend_pid = pg_backend_pid()
  AND r.backend_start = (SELECT a.backend_start FROM pg_stat_get_activity(pg_backend_pid()) AS a)
"""
# One batch of the body, its counts added to the run's; the body answers "more": true while it
# has more to do, and "error": a problem it could not get past (a channel it may not use).
# The body's name comes from the registry, never from a caller.
ADD_BATCH = """
UPDATE gstjobs.runs AS r
SET counts = gstjobs.add_counts(r.counts, b.counts - 'more' - 'error'),
    error = coalesce(r.error, b.counts ->> 'error')
FROM (SELECT {body}($1, $2, $3, $4) AS counts) AS b
WHERE r.id = $1
RETURNING coalesce((b.counts ->> 'more')::boolean, false) AS more
"""
# A dry run: the body once, and what it would have notified, read before it is rolled back
# (a statement of its own: one that also called the body would not see what the body wrote).
DRY_BATCH = "SELECT ({body}($1, $2, $3, $4) - 'more')::text AS counts"
WOULD_NOTIFY = """
SELECT ($2::jsonb || jsonb_build_object('would_notify', coalesce(
           (SELECT jsonb_agg(n) FROM gstjobs.run_notifications($1) AS n), '[]')))::text AS counts
"""
DRY_COUNTS = "UPDATE gstjobs.runs SET counts = $2::jsonb WHERE id = $1"
# A batch that failed while the run was asked to stop (gstjobs.stop_run: its timeout, an
# operator's cancel) failed because of it: the run ends as the request says, with its reason.
FINISH = """
UPDATE gstjobs.runs
SET status = CASE WHEN $2::text IS NOT NULL AND stop = 'cancel' THEN 'cancelled'
                  WHEN $2::text IS NOT NULL OR error IS NOT NULL THEN 'failed'
                  ELSE 'succeeded' END,
    error = CASE WHEN $2::text IS NOT NULL AND stop IS NOT NULL THEN stop_reason
                 ELSE coalesce($2, error) END,
    finished_at = clock_timestamp()
WHERE id = $1
"""


class DryRunRollback(Exception):
    """Raised inside a dry run's subtransaction so that none of its effects stay."""


def only_inside_run_job():
    if not GD.get(MARK):
        plpy.error(
            "a job runs only through CALL gstjobs.run_job(...)",
            sqlstate="42501",
            hint="CALL gstjobs.run_job('<job>') validates the request and records the run",
        )


def begin(job, as_of, tenant_id, dry_run, reason, wait):
    """gstjobs.run_begin: gstjobs.start_run's (run_id, acquired)."""
    only_inside_run_job()
    start = plan("start", START, ["text", "timestamptz", "bigint", "boolean", "text", "boolean"])
    try:
        return plpy.execute(start, [job, as_of, tenant_id, dry_run, reason, wait])[0]
    except plpy.SPIError as error:
        reraise(error)


def batch(run_id):
    """gstjobs.run_batch: one batch of the run's body; True once the run is finished."""
    only_inside_run_job()
    found = plpy.execute(plan("run", RUN, ["bigint"]), [run_id])
    if not found:
        plpy.error(f"run {run_id} is not running in this session", sqlstate="55000")
    run = found[0]
    body = run["body"].split("(", 1)[0]  # a regprocedure: gstjobs.job_heartbeat(bigint, ...)
    args = [run_id, run["as_of"], run["tenant_id"], run["dry_run"]]
    finish = plan("finish", FINISH, ["bigint", "text"])
    try:
        if run["dry_run"]:
            counts = run_and_roll_back(body, args)
            plpy.execute(plan("dry counts", DRY_COUNTS, ["bigint", "text"]), [run_id, counts])
        elif plpy.execute(plan("add:" + body, ADD_BATCH.format(body=body), JOB_ARG_TYPES), args)[0][
            "more"
        ]:
            return False
    except plpy.SPIError as error:
        # The failed statement was rolled back by PL/Python's implicit subtransaction; the
        # batches before it were committed, with their counts.
        record_outcome(finish, run_id, describe(error))
        return True
    record_outcome(finish, run_id, None)
    return True


def record_outcome(finish, run_id, error):
    """FINISH, once more if a cancel landed on it (gstjobs.stop_run holds the run's row while it
    signals, so the signal can arrive while FINISH waits for the row): the cancel is spent, and
    a run whose work was all done by then succeeded."""
    try:
        plpy.execute(finish, [run_id, error])
    except plpy.SPIError as cancelled:
        if cancelled.sqlstate != "57014":
            raise
        plpy.execute(finish, [run_id, error])


def run_and_roll_back(body, args):
    """One call of the body whose effects are undone: its counts with the notifications it
    would have sent, as jsonb text."""
    dry = plan("dry:" + body, DRY_BATCH.format(body=body), JOB_ARG_TYPES)
    would = plan("would", WOULD_NOTIFY, ["bigint", "text"])
    result = {}
    try:
        with plpy.subtransaction():
            counts = plpy.execute(dry, args)[0]["counts"]
            result["counts"] = plpy.execute(would, [args[0], counts])[0]["counts"]
            raise DryRunRollback()
    except DryRunRollback:
        pass
    return result["counts"]


def reraise(error):
    """Raise a caught SPIError again as the caller's error: same message, SQLSTATE, detail
    and hint."""
    detail, hint = spi_detail_hint(error)
    extra = {k: v for k, v in (("detail", detail), ("hint", hint)) if v}
    message = str(error.args[0] if error.args else error)
    # an error raised by plpy.error arrives as 'plpy.Error: <message>': raised again, it
    # would say so twice
    while message.startswith("plpy.Error: "):
        message = message.removeprefix("plpy.Error: ")
    plpy.error(message, sqlstate=error.sqlstate, **extra)


def spi_detail_hint(error):
    """DETAIL and HINT of a plpy.SPIError (PL/Python keeps them in its spidata tuple)."""
    spidata = getattr(error, "spidata", None) or (None, None, None)
    return spidata[1], spidata[2]


def describe(error):
    """The error's message with its detail and hint, as a person would want to read it."""
    parts = [str(error.args[0] if error.args else error)]
    for label, value in zip(("DETAIL", "HINT"), spi_detail_hint(error), strict=True):
        if value:
            parts.append(f"{label}: {value}")
    return "\n".join(parts)
