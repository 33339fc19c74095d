-- The run ledger: validating a run request, the guard against overlapping runs, a run's
-- counts, and gstjobs.run_job with its two steps (plpy/runner.py). Re-applied whole on every
-- upgrade to head (routines of schema gstjobs are dropped first), so this file is the one
-- definition of each. A PL/Python body written as the call of its entry point is rendered
-- from plpy/ (cli/resources.py).

SET ROLE gstjobs_owner;

CREATE OR REPLACE FUNCTION gstjobs.mark_crashed_runs() RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- A run is alive while the backend that started it is still running the statement that
    -- started it: the same pid, backend start and statement start, and active. A backend that
    -- died, or whose CALL ended without finishing the run, leaves a run that is over.
    WITH crashed AS (
        UPDATE gstjobs.runs AS r
        -- a run asked to stop (gstjobs.stop_run) whose CALL ended on the cancel, before it
        -- could say so itself, ends as the request said
        SET status = CASE r.stop WHEN 'cancel' THEN 'cancelled' WHEN 'timeout' THEN 'failed' ELSE 'crashed' END,
            finished_at = clock_timestamp(),
            error = coalesce(r.stop_reason, format('the session running it (pid %s) ended, or its statement did, before the run finished', r.backend_pid))
        WHERE r.status = 'running'
          -- the backend by its pid (pg_stat_activity without its joins: this runs at the
          -- start of every run, in the new session pg_cron starts)
          AND NOT EXISTS (
              SELECT FROM pg_stat_get_activity(r.backend_pid) AS a
              WHERE a.pid = r.backend_pid
                AND a.backend_start IS NOT DISTINCT FROM r.backend_start
                AND a.query_start IS NOT DISTINCT FROM r.query_start
                AND a.state = 'active')
        RETURNING 1)
    SELECT count(*)::integer FROM crashed;
END;
COMMENT ON FUNCTION gstjobs.mark_crashed_runs() IS 'marks crashed every running run whose session is gone or no longer running it; returns how many';

-- Owner only. Asks a running run to stop: keeps why on its row (the runner records it as the
-- run's error), then cancels the statement of the backend running it, only while that backend
-- still runs it. The row stays locked until the caller commits, so the run cannot finish and
-- its backend move on to another statement before the signal lands. True once signalled.
CREATE OR REPLACE FUNCTION gstjobs.stop_run(run_id bigint, stop text, reason text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target gstjobs.runs;
BEGIN
    SELECT r.* INTO target FROM gstjobs.runs AS r
    WHERE r.id = stop_run.run_id AND r.status = 'running'
    FOR UPDATE;
    -- only the backend that started the run, while it still runs the run's statement; and
    -- not a superuser's (a run by hand as postgres): no role but a superuser may signal it,
    -- and a run that cannot be stopped must not stop every other run's start
    IF NOT FOUND OR NOT EXISTS (
        SELECT FROM pg_stat_get_activity(target.backend_pid) AS a
        JOIN pg_roles AS who ON who.oid = a.usesysid
        WHERE a.pid = target.backend_pid
          AND a.backend_start IS NOT DISTINCT FROM target.backend_start
          AND a.query_start IS NOT DISTINCT FROM target.query_start
          AND a.state = 'active'
          AND NOT who.rolsuper) THEN
        RETURN false;
    END IF;
    UPDATE gstjobs.runs AS r
    SET stop = coalesce(r.stop, stop_run.stop),
        stop_reason = coalesce(r.stop_reason, stop_run.reason),
        stop_requested_at = coalesce(r.stop_requested_at, clock_timestamp()),
        stop_requested_by = coalesce(r.stop_requested_by, session_user)
    WHERE r.id = target.id;
    RETURN pg_cancel_backend(target.backend_pid);
EXCEPTION WHEN insufficient_privilege THEN
    -- a backend the owner may not signal after all: left running, reported by health-check
    -- (stuck-run) and the GstjobsRunStuck alert; the stop's record is undone with the block
    RETURN false;
END
$$;
COMMENT ON FUNCTION gstjobs.stop_run(bigint, text, text) IS
    'asks a running run to stop (timeout or cancel): records why, cancels its statement';

-- Called as every run starts (gstjobs.start_run), and by operators: stops each run past its
-- job's timeout (setting timeout.<job>). sla-check and dispatch-notifications start every
-- minute, so a run is stopped within a minute of its timeout while pg_cron runs them. A run
-- whose ledger row is locked (it is recording a batch) is left to the next look, so that no
-- start waits on it.
CREATE OR REPLACE FUNCTION gstjobs.enforce_timeouts() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    overdue record;
    stopped integer := 0;
BEGIN
    -- at most starts, no run has been running for the shortest timeout a setting allows (10 s):
    -- then the settings are not read at all (a run's start is every run's fixed cost)
    IF NOT EXISTS (SELECT FROM gstjobs.runs AS r
                   WHERE r.status = 'running' AND r.stop IS NULL
                     AND r.started_at < clock_timestamp() - interval '10 seconds') THEN
        RETURN 0;
    END IF;
    FOR overdue IN
        SELECT r.id, r.job, t.seconds
        FROM gstjobs.runs AS r
        -- a job without a timeout setting has none (never an error that would stop every
        -- start); the value is cast once found: a scalar subquery, so the planner cannot cast
        -- another setting's text on the way
        CROSS JOIN LATERAL (
            SELECT (SELECT coalesce(s.value, d.default_value)
                    FROM gstjobs.setting_defaults AS d
                    LEFT JOIN gstjobs.settings AS s ON s.key = d.key
                    WHERE d.key = 'timeout.' || r.job)::integer AS seconds) AS t
        WHERE r.status = 'running' AND r.stop IS NULL
          AND r.started_at < clock_timestamp() - make_interval(secs => t.seconds)
        FOR UPDATE OF r SKIP LOCKED
    LOOP
        IF gstjobs.stop_run(overdue.id, 'timeout',
                            format('timed out after %s (setting timeout.%s); the batch under way was rolled back',
                                   gstjobs.duration_words(overdue.seconds), overdue.job)) THEN
            stopped := stopped + 1;
        END IF;
    END LOOP;
    RETURN stopped;
END
$$;
COMMENT ON FUNCTION gstjobs.enforce_timeouts() IS
    'stops every run past its job''s timeout (setting timeout.<job>); returns how many were signalled';

-- "10 min", "55 s", "1 h 30 min": a number of seconds as people read it.
CREATE OR REPLACE FUNCTION gstjobs.duration_words(seconds integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    RETURN concat_ws(' ',
        CASE WHEN seconds >= 3600 THEN (seconds / 3600) || ' h' END,
        CASE WHEN seconds % 3600 >= 60 THEN (seconds % 3600 / 60) || ' min' END,
        CASE WHEN seconds % 60 > 0 OR seconds = 0 THEN (seconds % 60) || ' s' END);
COMMENT ON FUNCTION gstjobs.duration_words(integer) IS 'a number of seconds in words: 1 h 30 min, 55 s';

CREATE OR REPLACE FUNCTION gstjobs.job(name text) RETURNS gstjobs.jobs
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_job gstjobs.jobs;
BEGIN
    SELECT * INTO found_job FROM gstjobs.jobs AS j WHERE j.name = job.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job %', quote_literal(left(name, 100))
            USING ERRCODE = 'undefined_object',
                  HINT = 'jobs are: ' || (SELECT string_agg(j.name, ', ' ORDER BY j.name) FROM gstjobs.jobs AS j);
    END IF;
    RETURN found_job;
END
$$;
COMMENT ON FUNCTION gstjobs.job(text) IS 'a job of the registry by name, or an error that lists the jobs';

-- Owner only: called by gstjobs.run_begin, which only gstjobs.run_job's code can call.
CREATE OR REPLACE FUNCTION gstjobs.start_run(
    job text, as_of timestamptz, tenant_id bigint, dry_run boolean, reason text, wait boolean,
    OUT run_id bigint, OUT acquired boolean)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    registered gstjobs.jobs;
    run_trigger text;
    this_backend_start timestamptz;
    this_query_start timestamptz;
BEGIN
    registered := gstjobs.job(start_run.job);
    IF start_run.as_of > clock_timestamp() THEN
        RAISE EXCEPTION 'as_of % is in the future', start_run.as_of
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'a job replays a moment that has passed; leave as_of out to mean now';
    END IF;
    IF start_run.tenant_id IS NOT NULL
       AND NOT EXISTS (SELECT FROM litigation.tenants AS t WHERE t.id = start_run.tenant_id) THEN
        RAISE EXCEPTION 'unknown tenant %', start_run.tenant_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is % characters long; at most 1000 are kept', length(reason)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;

    -- One start of a job at a time: the registry row, which no other role may lock (locking a
    -- row takes UPDATE privilege). NO KEY UPDATE, so the jobs' own inserts that refer to the
    -- row (slots, runs) are not held up. The runner commits at once, releasing it.
    PERFORM FROM gstjobs.jobs AS j WHERE j.name = registered.name FOR NO KEY UPDATE;
    PERFORM gstjobs.mark_crashed_runs();
    PERFORM gstjobs.enforce_timeouts();

    -- The guard: the running runs of the job, all of them alive now. A run over all tenants
    -- excludes every other run of the job; one-tenant runs exclude the same tenant only.
    -- A run that only finishes what it has under way (counts.draining: a dispatch run past its
    -- claiming time, waiting for the replies to its messages in flight) takes no more work:
    -- the next run may begin beside it.
    acquired := NOT EXISTS (
        SELECT FROM gstjobs.runs AS r
        WHERE r.job = registered.name AND r.status = 'running'
          AND r.counts -> 'draining' IS DISTINCT FROM 'true'::jsonb
          AND (start_run.tenant_id IS NULL OR r.tenant_id IS NULL OR r.tenant_id = start_run.tenant_id));
    IF NOT acquired AND wait THEN
        RETURN;  -- by hand, --wait: the runner asks again shortly, recording nothing meanwhile
    END IF;

    -- pg_cron runs a job in a background worker of type 'pg_cron'; everything else is by hand.
    SELECT CASE WHEN a.backend_type = 'pg_cron' THEN 'cron' ELSE 'manual' END, a.backend_start,
           a.query_start
    INTO run_trigger, this_backend_start, this_query_start
    FROM pg_stat_get_activity(pg_backend_pid()) AS a;

    INSERT INTO gstjobs.runs AS r (job, tenant_id, trigger, reason, as_of, dry_run, status,
                                   finished_at, error, backend_start, query_start, cron_jobid,
                                   cron_runid)
    SELECT registered.name, start_run.tenant_id, run_trigger, start_run.reason,
           coalesce(start_run.as_of, now()), start_run.dry_run,
           CASE WHEN acquired THEN 'running' ELSE 'skipped' END,
           CASE WHEN acquired THEN NULL ELSE clock_timestamp() END,
           CASE WHEN acquired THEN NULL ELSE 'another run of this job was in progress' END,
           this_backend_start, this_query_start, d.jobid, d.runid
    FROM (SELECT) AS one
    LEFT JOIN LATERAL (
        -- pg_cron added this run's row as it started the run, moments ago, and it starts at
        -- most cron.max_running_jobs (32) runs at once: the row is among the newest by
        -- pg_cron's key. Looking there (through its primary key) instead of in the months of
        -- history kept makes the look-up independent of the history (docs/BENCHMARKS.md).
        SELECT d.jobid, d.runid
        FROM (SELECT * FROM cron.job_run_details ORDER BY runid DESC LIMIT 1000) AS d
        WHERE run_trigger = 'cron' AND d.job_pid = pg_backend_pid()
          AND d.status IN ('starting', 'running')
        ORDER BY d.runid DESC LIMIT 1) AS d ON true
    RETURNING r.id INTO run_id;
    IF run_trigger = 'manual' THEN
        INSERT INTO gstjobs.audit_log (action, job, details, reason)
        VALUES ('run', registered.name,
                jsonb_build_object('run_id', run_id, 'as_of', start_run.as_of,
                                   'tenant_id', start_run.tenant_id, 'dry_run', start_run.dry_run,
                                   'wait', wait, 'acquired', acquired),
                start_run.reason);
    END IF;
END
$$;
COMMENT ON FUNCTION gstjobs.start_run(text, timestamptz, bigint, boolean, text, boolean) IS
    'validates a run request, takes the job''s guard and records the run (running, or skipped)';

-- A run's counts over its batches: numbers are added up, lists (failed_firms) joined,
-- anything else is the last batch's.
CREATE OR REPLACE FUNCTION gstjobs.add_counts(total jsonb, batch jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
RETURN total || coalesce((
    SELECT jsonb_object_agg(b.key, CASE
        WHEN jsonb_typeof(b.value) = 'number' AND jsonb_typeof(total -> b.key) = 'number'
        THEN to_jsonb((total ->> b.key)::numeric + (b.value #>> '{}')::numeric)
        WHEN jsonb_typeof(b.value) = 'array' AND jsonb_typeof(total -> b.key) = 'array'
        THEN (total -> b.key) || b.value
        ELSE b.value END)
    FROM jsonb_each(batch) AS b), '{}');
COMMENT ON FUNCTION gstjobs.add_counts(jsonb, jsonb) IS
    'adds a batch''s counts to a run''s: numbers are summed, lists joined, anything else is the batch''s';

CREATE OR REPLACE FUNCTION gstjobs.run_guard(run_id bigint, job text) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Only gstjobs.run_batch calls a job's body (no other role may execute one); this checks
    -- again that the body works for a run of its own job that this session is running.
    IF NOT EXISTS (SELECT FROM gstjobs.runs AS r
                   WHERE r.id = run_guard.run_id AND r.job = run_guard.job
                     AND r.status = 'running' AND r.backend_pid = pg_backend_pid()) THEN
        RAISE EXCEPTION 'run % is not a running % run of this session', run_id, job
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'run a job with CALL gstjobs.run_job(''<job>'')';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION gstjobs.run_notifications(run_id bigint)
    RETURNS TABLE (kind text, channel text, recipient text, subject text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- what a dry run would send, shown to whoever runs it, before it is rolled back
    SELECT n.kind, n.channel, n.recipient, n.subject
    FROM gstjobs.notifications AS n
    WHERE n.run_id = run_notifications.run_id
      AND EXISTS (SELECT FROM gstjobs.runs AS r
                  WHERE r.id = run_notifications.run_id AND r.status = 'running'
                    AND r.backend_pid = pg_backend_pid())
    ORDER BY n.urgency, n.id
    LIMIT 50;
END;

RESET ROLE;

-- ------------------------------------------------------------------ PL/Python --------------
-- plpython3u is untrusted: only a superuser may create its functions. They are created here
-- by the migrating superuser and handed to gstjobs_owner, which can run but not rewrite them.

-- The one door into a run. It runs with its caller's rights (a procedure that commits may not
-- be SECURITY DEFINER): runner (pg_cron) or operator. Its two privileged steps are the
-- SECURITY DEFINER functions below, which refuse to work unless this procedure's own code is
-- running in the session (a mark in PL/Python's GD, which SQL cannot reach and only gstjobs's
-- functions, created by a superuser, can set): calling them directly does nothing.
CREATE OR REPLACE PROCEDURE gstjobs.run_job(
    job text, as_of timestamptz DEFAULT NULL, tenant_id bigint DEFAULT NULL,
    dry_run boolean DEFAULT false, reason text DEFAULT NULL, wait boolean DEFAULT false,
    INOUT run_id bigint DEFAULT NULL)
    LANGUAGE plpython3u
    -- no SET clause: a procedure with one may not commit; every name and type inside is
    -- qualified, so the caller's search_path and temporary objects are never consulted
AS $plpy$ runner.run_job(job, as_of, tenant_id, dry_run, reason, wait) $plpy$;
COMMENT ON PROCEDURE gstjobs.run_job(text, timestamptz, bigint, boolean, text, boolean, bigint) IS
    'runs a toolkit job now, as pg_cron does: CALL gstjobs.run_job(''sla-check''); returns its run_id';

-- Executable by the runner and operators, for gstjobs.run_job; works only inside it.
CREATE OR REPLACE FUNCTION gstjobs.run_begin(
    job text, as_of timestamptz, tenant_id bigint, dry_run boolean, reason text, wait boolean,
    OUT run_id bigint, OUT acquired boolean)
    LANGUAGE plpython3u SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ runner.begin(job, as_of, tenant_id, dry_run, reason, wait) $plpy$;
COMMENT ON FUNCTION gstjobs.run_begin(text, timestamptz, bigint, boolean, text, boolean) IS
    'step 1 of gstjobs.run_job: gstjobs.start_run (validate, take the guard, record); refused outside run_job';

-- Executable by the runner and operators, for gstjobs.run_job; works only inside it.
CREATE OR REPLACE FUNCTION gstjobs.run_batch(run_id bigint) RETURNS boolean
    LANGUAGE plpython3u SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ runner.batch(run_id) $plpy$;
COMMENT ON FUNCTION gstjobs.run_batch(bigint) IS
    'step 2 of gstjobs.run_job: one batch of the run''s own body, with the ledger''s as_of, tenant and dry run; records the outcome when done; refused outside run_job';

-- plpython3u is untrusted: a superuser (the migration) creates these; the owner runs them.
ALTER PROCEDURE gstjobs.run_job(text, timestamptz, bigint, boolean, text, boolean, bigint) OWNER TO gstjobs_owner;
ALTER FUNCTION gstjobs.run_begin(text, timestamptz, bigint, boolean, text, boolean) OWNER TO gstjobs_owner;
ALTER FUNCTION gstjobs.run_batch(bigint) OWNER TO gstjobs_owner;

-- ------------------------------------------------------------------ privileges -------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA gstjobs FROM PUBLIC;
-- pg_cron calls run_job as the runner; people as members of gstjobs_operator. What run_job
-- may do is bounded by start_run's checks, whoever calls it.
GRANT EXECUTE ON PROCEDURE gstjobs.run_job(text, timestamptz, bigint, boolean, text, boolean, bigint)
    TO gstjobs_runner, gstjobs_operator;
-- Operators: a job of the registry by name, or an error that lists the jobs (what the CLI
-- asks before showing a job's history); the registry is theirs to read anyway.
GRANT EXECUTE ON FUNCTION gstjobs.job(text) TO gstjobs_operator;
-- run_job's caller needs these two to call them; each refuses outside run_job (see above).
GRANT EXECUTE ON FUNCTION gstjobs.run_begin(text, timestamptz, bigint, boolean, text, boolean),
                          gstjobs.run_batch(bigint)
    TO gstjobs_runner, gstjobs_operator;
-- Operators: stop the runs past their timeout now (as every run's start does); it does
-- nothing the timeout settings do not say.
GRANT EXECUTE ON FUNCTION gstjobs.enforce_timeouts() TO gstjobs_operator;
-- Nothing else here is granted: stop_run, start_run, the guard, the jobs' bodies and their helpers are
-- executed by the owner only, inside run_begin and run_batch.
