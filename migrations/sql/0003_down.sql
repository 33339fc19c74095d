-- The jobs' bodies declared with the jsonb transform go with it (CASCADE), like the other
-- re-applied functions that need what a downgrade removes: `alembic upgrade head` creates them
-- again (docs/MIGRATIONS.md).
DO $$
BEGIN
    IF EXISTS (SELECT FROM gstjobs.installed_extensions WHERE name = 'jsonb_plpython3u') THEN
        DROP EXTENSION jsonb_plpython3u CASCADE;
        DELETE FROM gstjobs.installed_extensions WHERE name = 'jsonb_plpython3u';
    END IF;
END
$$;
DROP INDEX gstjobs.notifications_dead_idx;
DROP INDEX gstjobs.notifications_run_idx, gstjobs.slots_run_idx, gstjobs.analytics_snapshots_run_idx,
    gstjobs.health_reports_run_idx;
DROP INDEX litigation.members_partners_idx;
CREATE INDEX notifications_due_idx ON gstjobs.notifications (urgency, next_attempt_at)
    WHERE status IN ('pending', 'failed');
DROP INDEX gstjobs.notifications_claim_idx;
