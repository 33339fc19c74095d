-- The jobs' bodies: f(run_id, as_of, tenant_id, dry_run) RETURNS jsonb, their counts,
-- SECURITY DEFINER, executed by the owner only, inside gstjobs.run_batch (docs/SECURITY.md).
-- Re-applied on every upgrade to head; the PL/Python ones are rendered from plpy/.

SET ROLE gstjobs_owner;

CREATE OR REPLACE FUNCTION gstjobs.job_heartbeat(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- Proves pg_cron reaches the toolkit: the run's own ledger row is the record of the beat.
    SELECT gstjobs.run_guard(run_id, 'heartbeat');
    SELECT jsonb_build_object('lag_ms', round(extract(epoch FROM clock_timestamp() - as_of) * 1000)::bigint);
END;

RESET ROLE;

-- ------------------------------------------------------------------ PL/Python --------------
-- plpython3u is untrusted: the migrating superuser creates these and hands them to the owner.
-- The jobs' bodies: f(run_id, as_of, tenant_id, dry_run) RETURNS jsonb, their counts, which
-- they return as a Python dict through jsonb_plpython3u's transform: no json module to import
-- in a new session (the transform also carries health-check's report in and out).
CREATE OR REPLACE FUNCTION gstjobs.job_sla_check(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ sla_check.sla_check(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE OR REPLACE FUNCTION gstjobs.job_hearing_reminders(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ local_jobs.hearing_reminders(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE OR REPLACE FUNCTION gstjobs.job_deadline_alerts(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ local_jobs.deadline_alerts(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE OR REPLACE FUNCTION gstjobs.job_analytics_snapshot(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ local_jobs.analytics_snapshot(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE OR REPLACE FUNCTION gstjobs.job_health_check(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ health_check.health_check(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE OR REPLACE FUNCTION gstjobs.job_purge_history(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
    RETURNS jsonb LANGUAGE plpython3u TRANSFORM FOR TYPE jsonb SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $plpy$ purge_history.purge_history(run_id, as_of, tenant_id, dry_run) $plpy$;

CREATE OR REPLACE FUNCTION gstjobs.job_dispatch_notifications(run_id bigint, as_of timestamptz, tenant_id bigint, dry_run boolean)
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

-- Granted to nobody: the registry (90_jobs.sql) names them, run_batch calls them.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
