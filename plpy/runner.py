"""Run one toolkit job: ledger row committed first, the job's body, the outcome, one commit."""

import json

# The procedure runs with the caller's rights (a SECURITY DEFINER procedure may not commit),
# so every privileged step is a SECURITY DEFINER function of sql/functions.sql.

START = "SELECT run_id, acquired, body, run_as_of FROM gstjobs.run_start($1, $2, $3, $4, $5, $6)"
# what a dry run would have sent, read before it is rolled back
WOULD_NOTIFY = "SELECT * FROM gstjobs.run_notifications($1)"
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
    body = plan("body:" + body_name, f"SELECT {body_name}($1, $2, $3, $4) AS counts", JOB_ARG_TYPES)
    finish = plan("finish", FINISH, ["bigint", "text", "text", "text"])
    args = [run_id, started["run_as_of"], tenant_id, dry_run]
    try:
        counts = run_and_roll_back(body, args) if dry_run else run_batches(body, args)
    except plpy.SPIError as error:
        # The failed statement was rolled back by PL/Python's implicit subtransaction.
        plpy.execute(finish, [run_id, "failed", "{}", describe(error)])
    else:
        plpy.execute(finish, [run_id, "succeeded", json.dumps(counts), None])
    # Effects and the ledger's outcome commit together: a run that dies before this line
    # leaves no effect and is later marked crashed.
    plpy.commit()
    return {"run_id": run_id}


def run_batches(body, args):
    """Call the body until it says it has no more to do, committing between batches.

    A body that works in bounded batches returns {"more": true, ...} while work remains; the
    counts of all its batches are added up.
    """
    total = {}
    while True:
        counts = json.loads(plpy.execute(body, args)[0]["counts"])
        more = counts.pop("more", False)
        for name, value in counts.items():
            countable = isinstance(value, int) and not isinstance(value, bool)
            total[name] = total.get(name, 0) + value if countable else value
        if not more:
            return total
        plpy.commit()


def run_and_roll_back(body, args):
    """One call of the body whose effects are undone: what a dry run would have done."""
    result = {}
    try:
        with plpy.subtransaction():
            result["counts"] = json.loads(plpy.execute(body, args)[0]["counts"])
            would = plpy.execute(plan("would", WOULD_NOTIFY, ["bigint"]), [args[0]])
            result["counts"]["would_notify"] = [dict(row) for row in would]
            raise DryRunRollback()
    except DryRunRollback:
        pass
    result["counts"].pop("more", None)
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
