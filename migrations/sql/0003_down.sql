DROP INDEX gstjobs.notifications_dead_idx;
DROP INDEX gstjobs.notifications_run_idx, gstjobs.slots_run_idx, gstjobs.analytics_snapshots_run_idx,
    gstjobs.health_reports_run_idx;
DROP INDEX litigation.members_partners_idx;
CREATE INDEX notifications_due_idx ON gstjobs.notifications (urgency, next_attempt_at)
    WHERE status IN ('pending', 'failed');
DROP INDEX gstjobs.notifications_claim_idx;
