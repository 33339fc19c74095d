-- Delivery limits as rates, not caps (docs/DELIVERY.md): each channel's token bucket, shared
-- by every dispatcher, and claims that hold across a run's commits while messages are in
-- flight. The per-run cap and the batch size go: a run sends while work is due and its rate
-- allows, for at most dispatch.run_seconds.
SET ROLE gstjobs_owner;

CREATE TABLE gstjobs.send_rates (
    channel     text PRIMARY KEY CHECK (channel IN ('email', 'whatsapp')),
    -- tokens as of refilled_at
    tokens      double precision NOT NULL DEFAULT 0,
    refilled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- the share of the channel's rate it is refilled at: cut when the provider answers 429
    -- (too many), recovered as time passes, so the bucket finds the provider's own pace
    pace        double precision NOT NULL DEFAULT 1 CHECK (pace >= 0.5 AND pace <= 1),
    slowed_at   timestamptz
);
COMMENT ON TABLE gstjobs.send_rates IS
    'each channel''s token bucket: refilled at the channel''s rate_per_second setting, taken from by every dispatcher (owner only)';
INSERT INTO gstjobs.send_rates (channel) VALUES ('email'), ('whatsapp');

ALTER TABLE gstjobs.notifications ADD COLUMN claimed_by bigint;
COMMENT ON COLUMN gstjobs.notifications.claimed_by IS
    'the dispatch run delivering it now; cleared with the outcome, or, when that run ended without one (a crash), by the next run, which sends it again';
CREATE INDEX notifications_claimed_idx ON gstjobs.notifications (claimed_by)
    WHERE claimed_by IS NOT NULL;

-- the settings that go, with a note of what was set (the audit log keeps it)
INSERT INTO gstjobs.audit_log (action, details, reason)
SELECT 'config.remove', jsonb_build_object('key', s.key, 'value', s.value),
       'revision 0010: delivery limits are rates (smtp.rate_per_second, whatsapp.rate_per_second)'
FROM gstjobs.settings AS s
WHERE s.key IN ('dispatch.per_run_limit', 'dispatch.batch_size');
DELETE FROM gstjobs.settings WHERE key IN ('dispatch.per_run_limit', 'dispatch.batch_size');

RESET ROLE;
