"""Run one toolkit job: ledger row committed first, the job's body, the outcome, one commit.

Counts stay jsonb from the body to the ledger, added up in SQL (gstjobs.add_counts): the
runner never parses JSON, so a run does not import json (and re), ~6 ms of every new session
pg_cron starts (docs/BENCHMARKS.md).
"""

# The procedure runs with the caller's rights (a SECURITY DEFINER procedure may not commit),
# so every privileged step is a SECURITY DEFINER function of sql/functions.sql.

START = "SELECT run_id, acquired, body, run_as_of FROM gstjobs.run_start($1, $2, $3, $4, $5, $6)"
# what a dry run would have sent, read before it is rolled back
# (a statement of its own: one that also called the body would not see what the body wrote)
WOULD_NOTIFY = """
SELECT $2::jsonb || jsonb_build_object('would_notify', coalesce(
           (SELECT jsonb_agg(n) FROM gstjobs.run_notifications($1) AS n), '[]')) AS counts
"""
# one batch of the body: the run's counts so far ($5) with this batch's added, and whether
# the body has more to do
BATCH = """
SELECT gstjobs.add_counts($5::jsonb, counts - 'more') AS total,
       coalesce((counts ->> 'more')::boolean, false) AS more
FROM {body}($1, $2, $3, $4) AS counts
"""
FINISH = "SELECT gstjobs.run_finish($1, $2, $3::jsonb, $4)"


class DryRunRollback(Exception):
    """Raised inside a dry run's subtransaction so that none of its effects stay."""


def run_job(job, as_of, tenant_id, dry_run, reason, wait):
    """Run a job; returns the procedure's INOUT run_id, as PL/Python wants it: a mapping."""
    start = plan("start", START, ["text", "timestamptz", "bigint", "boolean", "text", "boolean"])
    try:
        started = plpy.execute(start, [job, as_of, tenant_id, dry_run, reason, wait])[0]
    except plpy.SPIError as error:
        # A refused request (unknown job, future as_of, ...) reaches the caller as it was
        # raised, same SQLSTATE, without PL/Python's traceback around it.
        detail, hint = spi_detail_hint(error)
        extra = {k: v for k, v in (("detail", detail), ("hint", hint)) if v}
        plpy.error(error.args[0] if error.args else str(error), sqlstate=error.sqlstate, **extra)
    # The ledger row is visible (status running, or skipped) before any work begins.
    plpy.commit()
    if not started["acquired"]:
        return {"run_id": started["run_id"]}

    run_id = started["run_id"]
    # body is a regprocedure the registry holds, such as gstjobs.job_heartbeat(bigint,...):
    # its name comes from the catalog, never from the caller.
    body_name = started["body"].split("(", 1)[0]
    finish = plan("finish", FINISH, ["bigint", "text", "text", "text"])
    args = [run_id, started["run_as_of"], tenant_id, dry_run]
    try:
        batch = plan("batch:" + body_name, BATCH.format(body=body_name), [*JOB_ARG_TYPES, "text"])
        counts = run_and_roll_back(batch, args) if dry_run else run_batches(batch, args)
    except plpy.SPIError as error:
        # The failed statement was rolled back by PL/Python's implicit subtransaction.
        plpy.execute(finish, [run_id, "failed", "{}", describe(error)])
    else:
        plpy.execute(finish, [run_id, "succeeded", counts, None])
    # Effects and the ledger's outcome commit together: a run that dies before this line
    # leaves no effect and is later marked crashed.
    plpy.commit()
    return {"run_id": run_id}


def run_batches(batch, args):
    """Call the body until it says it has no more to do, committing between batches.

    A body that works in bounded batches returns {"more": true, ...} while work remains; the
    counts of all its batches are added up. Returns the total as jsonb text.
    """
    total = "{}"
    while True:
        row = plpy.execute(batch, [*args, total])[0]
        total = row["total"]
        if not row["more"]:
            return total
        plpy.commit()


def run_and_roll_back(batch, args):
    """One call of the body whose effects are undone: what a dry run would have done, with
    the notifications it would have sent, as jsonb text."""
    would = plan("would", WOULD_NOTIFY, ["bigint", "text"])
    result = {}
    try:
        with plpy.subtransaction():
            counts = plpy.execute(batch, [*args, "{}"])[0]["total"]
            result["counts"] = plpy.execute(would, [args[0], counts])[0]["counts"]
            raise DryRunRollback()
    except DryRunRollback:
        pass
    return result["counts"]


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
