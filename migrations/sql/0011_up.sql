-- Monitoring (monitoring/, docs/OPERATIONS.md): a role that reads the metric views and
-- nothing else, for the exporter's login; it cannot run, pause or cancel anything.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gstjobs_monitor') THEN
        CREATE ROLE gstjobs_monitor NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE gstjobs_monitor IS 'gstjobs: reads the metric views (grant it to the Prometheus exporter''s login)';
-- What it may read is granted with each re-applied view (sql/80_views.sql).
GRANT USAGE ON SCHEMA gstjobs TO gstjobs_monitor;

-- Per-job timeouts and cancel (docs/OPERATIONS.md, "Stopping a run"): a run can be asked to
-- stop, by its job's timeout (setting timeout.<job>) or by an operator (gstjobs cancel); the
-- request is kept on the run, the run's statement is cancelled, and the run ends failed ("timed
-- out after ...") or cancelled, its partial batch rolled back as a crash's would be.
SET ROLE gstjobs_owner;

ALTER TABLE gstjobs.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE gstjobs.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'crashed', 'cancelled'));
ALTER TABLE gstjobs.runs
    ADD COLUMN stop text CHECK (stop IN ('timeout', 'cancel')),
    ADD COLUMN stop_reason text CHECK (length(stop_reason) <= 1100),
    ADD COLUMN stop_requested_at timestamptz,
    ADD COLUMN stop_requested_by text;
COMMENT ON COLUMN gstjobs.runs.stop IS
    'why the run was asked to stop: its job''s timeout passed, or an operator cancelled it';
COMMENT ON COLUMN gstjobs.runs.stop_reason IS
    'what the run''s error says when it stops for that request';

-- the timeouts are settings named after their jobs: timeout.sla-check
ALTER TABLE gstjobs.settings DROP CONSTRAINT settings_key_check;
ALTER TABLE gstjobs.settings ADD CONSTRAINT settings_key_check
    CHECK (key ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$');

RESET ROLE;

-- The owner cancels the statement of a run past its timeout or cancelled, whichever role's
-- session runs it (pg_cron's runner, an operator's login). pg_signal_backend lets it signal any
-- backend but a superuser's; its functions signal only the backend a running run's ledger row
-- names, while that backend still runs the run's statement (docs/SECURITY.md).
GRANT pg_signal_backend TO gstjobs_owner;
