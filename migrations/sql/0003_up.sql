-- dispatch claims the most urgent due message of a channel: ORDER BY urgency, next_attempt_at,
-- id. The baseline's index stopped at next_attempt_at, and every message one run writes shares
-- that run's now(), so each claim read and sorted all of them: 10,000 messages queued by one
-- run cost a sort of up to 10,000 rows per message sent (docs/BENCHMARKS.md). With the
-- channel first and the id last, a claim reads the rows it takes, whatever the other channel
-- holds back (a WhatsApp outage leaves its messages pending ahead of the emails).
CREATE INDEX notifications_claim_idx
    ON gstjobs.notifications (channel, urgency, next_attempt_at, id)
    WHERE status IN ('pending', 'failed');
DROP INDEX gstjobs.notifications_due_idx;
