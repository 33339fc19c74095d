-- Back to 0010: no timeouts, no cancel. A cancelled run is kept as failed, with its reason; the
-- timeout settings go, with a note of what was set.
SET ROLE gstjobs_owner;

INSERT INTO gstjobs.audit_log (action, details, reason)
SELECT 'config.remove', jsonb_build_object('key', s.key, 'value', s.value),
       'revision 0011 undone: no run timeouts before it'
FROM gstjobs.settings AS s
WHERE s.key LIKE 'timeout.%';
DELETE FROM gstjobs.settings WHERE key LIKE 'timeout.%';
ALTER TABLE gstjobs.settings DROP CONSTRAINT settings_key_check;
ALTER TABLE gstjobs.settings ADD CONSTRAINT settings_key_check
    CHECK (key ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$');

-- what 0011 brought among the re-applied objects (sql/): gone with it, since they name what
-- the revisions below drop (claimed_by, the stop columns)
DROP VIEW gstjobs.job_metrics, gstjobs.job_run_metrics, gstjobs.schedule_metrics, gstjobs.outbox_metrics,
    gstjobs.slot_metrics, gstjobs.job_stats;
DROP FUNCTION gstjobs.schedule_facts(), gstjobs.cancel_job(text, text),
    gstjobs.enforce_timeouts(), gstjobs.stop_run(bigint, text, text),
    gstjobs.duration_words(integer);

-- the crash sweep as it was (it names the stop columns now: they could not go while it does)
CREATE OR REPLACE FUNCTION gstjobs.mark_crashed_runs() RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- A run is alive while the backend that started it is still running the statement that
    -- started it: the same pid, backend start and statement start, and active. A backend that
    -- died, or whose CALL ended without finishing the run, leaves a run that is over.
    WITH crashed AS (
        UPDATE gstjobs.runs AS r
        SET status = 'crashed',
            finished_at = clock_timestamp(),
            error = format('the session running it (pid %s) ended, or its statement did, before the run finished', r.backend_pid)
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


ALTER TABLE gstjobs.runs DROP CONSTRAINT runs_status_check;
UPDATE gstjobs.runs SET status = 'failed', error = coalesce(stop_reason, error)
WHERE status = 'cancelled';
ALTER TABLE gstjobs.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'crashed'));
ALTER TABLE gstjobs.runs DROP COLUMN stop CASCADE, DROP COLUMN stop_reason CASCADE,
    DROP COLUMN stop_requested_at CASCADE, DROP COLUMN stop_requested_by CASCADE;

RESET ROLE;

REVOKE pg_signal_backend FROM gstjobs_owner;

-- the monitoring role goes (kept while another database, or a role of the DBA's, uses it)
REVOKE ALL ON SCHEMA gstjobs FROM gstjobs_monitor;
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_shdepend
        WHERE refclassid = 'pg_authid'::regclass
          AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_monitor')
          AND dbid <> (SELECT oid FROM pg_database WHERE datname = current_database())
    ) OR EXISTS (
        SELECT FROM pg_auth_members AS m JOIN pg_roles AS member ON member.oid = m.member
        WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_monitor')
          AND member.rolname NOT LIKE 'gstjobs\_%'
    ) THEN
        RAISE NOTICE 'role gstjobs_monitor kept: another database, or a role of yours, uses it';
    ELSE
        DROP OWNED BY gstjobs_monitor;
        DROP ROLE gstjobs_monitor;
    END IF;
END
$$;
