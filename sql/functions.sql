-- gstjobs functions and procedures. Re-applied whole on every upgrade to head (routines of
-- schema gstjobs are dropped first), so this file is the one definition of each.
-- A PL/Python body written as the call of its entry point is rendered from plpy/ (cli/resources.py).

SET ROLE gstjobs_owner;

-- ------------------------------------------------------------------ the run ledger ---------

CREATE FUNCTION gstjobs.mark_crashed_runs() RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH crashed AS (
        UPDATE gstjobs.runs AS r
        SET status = 'crashed',
            finished_at = clock_timestamp(),
            error = format('the backend running it (pid %s) ended before the run finished', r.backend_pid)
        WHERE r.status = 'running'
          -- the backend by its pid (pg_stat_activity without its joins: this runs at the
          -- start of every run, in the new session pg_cron starts)
          AND NOT EXISTS (
              SELECT FROM pg_stat_get_activity(r.backend_pid) AS a
              WHERE a.pid = r.backend_pid
                AND a.backend_start IS NOT DISTINCT FROM r.backend_start)
        RETURNING 1)
    SELECT count(*)::integer FROM crashed;
END;
COMMENT ON FUNCTION gstjobs.mark_crashed_runs() IS 'marks crashed every running run whose backend is gone; returns how many';

CREATE FUNCTION gstjobs.job(name text) RETURNS gstjobs.jobs
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

CREATE FUNCTION gstjobs.run_start(
    job text, as_of timestamptz, tenant_id bigint, dry_run boolean, reason text, wait boolean,
    OUT run_id bigint, OUT acquired boolean, OUT body text, OUT run_as_of timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    registered gstjobs.jobs;
    run_trigger text;
    this_backend_start timestamptz;
    job_key bigint;
BEGIN
    registered := gstjobs.job(run_start.job);
    IF run_start.as_of > clock_timestamp() THEN
        RAISE EXCEPTION 'as_of % is in the future', run_start.as_of
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'a job replays a moment that has passed; leave as_of out to mean now';
    END IF;
    IF run_start.tenant_id IS NOT NULL
       AND NOT EXISTS (SELECT FROM litigation.tenants AS t WHERE t.id = run_start.tenant_id) THEN
        RAISE EXCEPTION 'unknown tenant %', run_start.tenant_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is % characters long; at most 1000 are kept', length(reason)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;

    PERFORM gstjobs.mark_crashed_runs();

    -- pg_cron runs a job in a background worker of type 'pg_cron'; everything else is by hand.
    SELECT CASE WHEN a.backend_type = 'pg_cron' THEN 'cron' ELSE 'manual' END, a.backend_start
    INTO run_trigger, this_backend_start
    FROM pg_stat_get_activity(pg_backend_pid()) AS a;

    -- One run of a job at a time: a run over all tenants holds the job's lock exclusively, a
    -- one-tenant run holds it shared plus the (job, tenant) lock, so runs over distinct tenants
    -- go side by side. Session locks: they outlive the commits inside the run.
    job_key := hashtextextended('gstjobs.job:' || registered.name, 0);
    IF wait THEN
        -- by hand, --wait: queue behind the run in progress instead of skipping
        IF run_start.tenant_id IS NULL THEN
            PERFORM pg_advisory_lock(job_key);
        ELSE
            PERFORM pg_advisory_lock_shared(job_key);
            PERFORM pg_advisory_lock(
                hashtextextended('gstjobs.job:' || registered.name || ':' || run_start.tenant_id, 0));
        END IF;
        acquired := true;
    ELSIF run_start.tenant_id IS NULL THEN
        acquired := pg_try_advisory_lock(job_key);
    ELSE
        acquired := pg_try_advisory_lock_shared(job_key);
        IF acquired THEN
            acquired := pg_try_advisory_lock(
                hashtextextended('gstjobs.job:' || registered.name || ':' || run_start.tenant_id, 0));
            IF NOT acquired THEN
                PERFORM pg_advisory_unlock_shared(job_key);
            END IF;
        END IF;
    END IF;

    run_as_of := coalesce(run_start.as_of, now());
    INSERT INTO gstjobs.runs AS r (job, tenant_id, trigger, reason, as_of, dry_run, status,
                                   finished_at, error, backend_start, cron_jobid, cron_runid)
    SELECT registered.name, run_start.tenant_id, run_trigger, run_start.reason, run_as_of,
           run_start.dry_run,
           CASE WHEN acquired THEN 'running' ELSE 'skipped' END,
           CASE WHEN acquired THEN NULL ELSE clock_timestamp() END,
           CASE WHEN acquired THEN NULL ELSE 'another run of this job was in progress' END,
           this_backend_start, d.jobid, d.runid
    FROM (SELECT) AS one
    LEFT JOIN LATERAL (
        -- pg_cron added this run's row as it started the run, moments ago, and it starts at
        -- most cron.max_running_jobs (32) runs at once: the row is among the newest by
        -- pg_cron's key. Looking there (through its primary key) instead of in the months of
        -- history kept took 28 ms to 0.06 ms with 90 days of runs (docs/BENCHMARKS.md).
        SELECT d.jobid, d.runid
        FROM (SELECT * FROM cron.job_run_details ORDER BY runid DESC LIMIT 1000) AS d
        WHERE run_trigger = 'cron' AND d.job_pid = pg_backend_pid()
          AND d.status IN ('starting', 'running')
        ORDER BY d.runid DESC LIMIT 1) AS d ON true
    RETURNING r.id INTO run_id;
    body := registered.body::text;
    IF run_trigger = 'manual' THEN
        INSERT INTO gstjobs.audit_log (action, job, details, reason)
        VALUES ('run', registered.name,
                jsonb_build_object('run_id', run_id, 'as_of', run_start.as_of,
                                   'tenant_id', run_start.tenant_id, 'dry_run', run_start.dry_run,
                                   'wait', wait, 'acquired', acquired),
                run_start.reason);
    END IF;
END
$$;
COMMENT ON FUNCTION gstjobs.run_start(text, timestamptz, bigint, boolean, text, boolean) IS
    'validates a run request, takes the job''s lock and records the run (running, or skipped)';

CREATE FUNCTION gstjobs.run_finish(run_id bigint, status text, counts jsonb, error text)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    finished gstjobs.runs;
BEGIN
    UPDATE gstjobs.runs AS r
    SET status = run_finish.status, counts = coalesce(run_finish.counts, '{}'),
        error = run_finish.error, finished_at = clock_timestamp()
    WHERE r.id = run_finish.run_id AND r.status = 'running' AND r.backend_pid = pg_backend_pid()
    RETURNING * INTO finished;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % is not running in this session', run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF finished.tenant_id IS NULL THEN
        PERFORM pg_advisory_unlock(hashtextextended('gstjobs.job:' || finished.job, 0));
    ELSE
        PERFORM pg_advisory_unlock(
            hashtextextended('gstjobs.job:' || finished.job || ':' || finished.tenant_id, 0));
        PERFORM pg_advisory_unlock_shared(hashtextextended('gstjobs.job:' || finished.job, 0));
    END IF;
END
$$;
COMMENT ON FUNCTION gstjobs.run_finish(bigint, text, jsonb, text) IS 'records a run''s outcome and releases its lock';

-- A run's counts over its batches: numbers are added up, anything else is the last batch's.
CREATE FUNCTION gstjobs.add_counts(total jsonb, batch jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
RETURN total || coalesce((
    SELECT jsonb_object_agg(b.key, CASE
        WHEN jsonb_typeof(b.value) = 'number' AND jsonb_typeof(total -> b.key) = 'number'
        THEN to_jsonb((total ->> b.key)::numeric + (b.value #>> '{}')::numeric)
        ELSE b.value END)
    FROM jsonb_each(batch) AS b), '{}');
COMMENT ON FUNCTION gstjobs.add_counts(jsonb, jsonb) IS
    'adds a batch''s counts to a run''s: numbers are summed, anything else is the batch''s';

CREATE FUNCTION gstjobs.run_guard(run_id bigint) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A job's body works only inside a run this session started through gstjobs.run_job,
    -- so no effect ever happens outside the ledger.
    IF NOT EXISTS (SELECT FROM gstjobs.runs AS r
                   WHERE r.id = run_guard.run_id AND r.status = 'running'
                     AND r.backend_pid = pg_backend_pid()) THEN
        RAISE EXCEPTION 'run % is not running in this session', run_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'run a job with CALL gstjobs.run_job(''<job>'')';
    END IF;
END
$$;

CREATE FUNCTION gstjobs.run_notifications(run_id bigint)
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

-- ------------------------------------------------------------------ local-time slots -------

CREATE FUNCTION gstjobs.due_slots(job text, as_of timestamptz, only_tenant bigint)
    RETURNS TABLE (job text, tenant_id bigint, zone text, local_date date, due_at timestamptz,
                   status text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- Where each slot is: every firm in its own zone, or (tenant 0) the operations zone.
    WITH registered AS (
        SELECT j.name, j.local_time, j.per_tenant FROM gstjobs.jobs AS j WHERE j.name = due_slots.job
    ),
    places AS (
        SELECT t.id AS tenant_id, t.timezone::text AS zone
        FROM litigation.tenants AS t, registered AS r
        WHERE r.per_tenant AND (only_tenant IS NULL OR t.id = only_tenant)
        UNION ALL
        SELECT 0, gstjobs.setting('ops.timezone') FROM registered AS r WHERE NOT r.per_tenant
    ),
    candidates AS (
        -- the local dates of the last week whose slot time has come
        SELECT p.tenant_id, p.zone, d.local_date,
               (d.local_date + r.local_time) AT TIME ZONE p.zone AS due_at,
               (SELECT max(s.local_date) FROM gstjobs.slots AS s
                WHERE s.job = r.name AND s.tenant_id = p.tenant_id) AS last_taken
        FROM places AS p
        CROSS JOIN registered AS r
        CROSS JOIN LATERAL (
            SELECT g::date AS local_date
            FROM generate_series((as_of AT TIME ZONE p.zone)::date - 7,
                                 (as_of AT TIME ZONE p.zone)::date, interval '1 day') AS g
        ) AS d
        WHERE (d.local_date + r.local_time) AT TIME ZONE p.zone <= as_of
    ),
    due AS (
        SELECT c.*, max(c.local_date) OVER (PARTITION BY c.tenant_id) AS latest
        FROM candidates AS c
    )
    SELECT due_slots.job, due.tenant_id, due.zone, due.local_date, due.due_at,
           CASE WHEN as_of - due.due_at > gstjobs.setting('slots.catchup_hours')::integer * interval '1 hour'
                THEN 'missed'
                WHEN as_of - due.due_at > gstjobs.setting('slots.late_after_minutes')::integer * interval '1 minute'
                THEN 'late'
                ELSE 'done' END
    FROM due
    -- after the last slot taken; a place with none yet (a new firm, a new install) starts at
    -- its latest slot if that is within the catch-up limit, so that nothing is reported
    -- missed that gstjobs was never there to run
    WHERE due.local_date > coalesce(due.last_taken, due.latest - 1)
      AND (due.last_taken IS NOT NULL
           OR as_of - due.due_at <= gstjobs.setting('slots.catchup_hours')::integer * interval '1 hour')
    ORDER BY due.tenant_id, due.local_date;
END;
COMMENT ON FUNCTION gstjobs.due_slots(text, timestamptz, bigint) IS
    'the local-time slots of a job that have come due by as_of and are not taken yet, with the status they would get';

-- ------------------------------------------------------------------ job bodies -------------
-- Each body: f(run_id, as_of, tenant_id, dry_run) RETURNS jsonb (its counts), SECURITY DEFINER.

CREATE FUNCTION gstjobs.job_heartbeat(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- Proves pg_cron reaches the toolkit: the run's own ledger row is the record of the beat.
    SELECT gstjobs.run_guard(run_id);
    SELECT jsonb_build_object('lag_ms', round(extract(epoch FROM clock_timestamp() - as_of) * 1000)::bigint);
END;

RESET ROLE;

-- ------------------------------------------------------------------ PL/Python --------------
-- plpython3u is untrusted: only a superuser may create its functions. They are created here
-- by the migrating superuser and handed to gstjobs_owner, which can run but not rewrite them.

CREATE PROCEDURE gstjobs.run_job(
    job text, as_of timestamptz DEFAULT NULL, tenant_id bigint DEFAULT NULL,
    dry_run boolean DEFAULT false, reason text DEFAULT NULL, wait boolean DEFAULT false,
    INOUT run_id bigint DEFAULT NULL)
    LANGUAGE plpython3u
    -- no SET clause: a procedure with one may not commit; every name inside is qualified
AS $plpy$ runner.run_job(job, as_of, tenant_id, dry_run, reason, wait) $plpy$;
COMMENT ON PROCEDURE gstjobs.run_job(text, timestamptz, bigint, boolean, text, boolean, bigint) IS
    'runs a toolkit job now, as pg_cron does: CALL gstjobs.run_job(''sla-check''); returns its run_id';

-- The jobs' bodies: f(run_id, as_of, tenant_id, dry_run) RETURNS jsonb, their counts, which
-- they return as a Python dict through jsonb_plpython3u's transform: no json module to import
-- in a new session (the transform also carries health-check's report in and out).
CREATE FUNCTION gstjobs.job_sla_check(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ sla_check.sla_check(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE FUNCTION gstjobs.job_hearing_reminders(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ local_jobs.hearing_reminders(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE FUNCTION gstjobs.job_deadline_alerts(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ local_jobs.deadline_alerts(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE FUNCTION gstjobs.job_analytics_snapshot(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ local_jobs.analytics_snapshot(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE FUNCTION gstjobs.job_health_check(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ health_check.health_check(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE FUNCTION gstjobs.job_purge_history(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ purge_history.purge_history(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE FUNCTION gstjobs.job_dispatch_notifications(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ dispatch.dispatch(run_id, as_of, tenant_id, dry_run) $plpy$;

DO $$
DECLARE
    routine regprocedure;
BEGIN
    FOR routine IN
        SELECT p.oid FROM pg_proc AS p
        WHERE p.pronamespace = 'gstjobs'::regnamespace
          AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpython3u')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO gstjobs_owner', routine);
    END LOOP;
END
$$;

-- ------------------------------------------------------------------ privileges -------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA gstjobs FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE gstjobs.run_job(text, timestamptz, bigint, boolean, text, boolean, bigint)
    TO gstjobs_runner, gstjobs_operator;
GRANT EXECUTE ON FUNCTION gstjobs.run_start(text, timestamptz, bigint, boolean, text, boolean),
                          gstjobs.run_finish(bigint, text, jsonb, text),
                          gstjobs.run_guard(bigint),
                          gstjobs.run_notifications(bigint),
                          gstjobs.add_counts(jsonb, jsonb)
    TO gstjobs_runner, gstjobs_operator;
-- The jobs' bodies are granted in sql/jobs.sql, once the registry names them.
