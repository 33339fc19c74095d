-- Back to 0017: health-check reads the slots kept to find the missed ones; the outbox view as
-- it was, without sending_run (head's, re-applied, reads notifications.claimed_by, which
-- 0010's downgrade drops).
SET ROLE gstjobs_owner;

DROP INDEX gstjobs.slots_missed_idx;

DROP VIEW gstjobs.outbox;
CREATE VIEW gstjobs.outbox AS
    SELECT id, tenant_id, kind, channel, recipient, member_id, subject, body, status, attempts,
           next_attempt_at, last_error, provider_reply, dedupe_key, urgency, created_at, sent_at,
           run_id
    FROM gstjobs.notifications;
COMMENT ON VIEW gstjobs.outbox IS 'the notification outbox as operators see it';

RESET ROLE;

GRANT SELECT ON gstjobs.outbox TO gstjobs_operator;
