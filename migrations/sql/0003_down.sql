CREATE INDEX notifications_due_idx ON gstjobs.notifications (urgency, next_attempt_at)
    WHERE status IN ('pending', 'failed');
DROP INDEX gstjobs.notifications_claim_idx;
