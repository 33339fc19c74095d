-- Back to 0012: the token bucket, empty, refilled from now.
SET ROLE gstjobs_owner;

ALTER TABLE gstjobs.send_rates
    DROP COLUMN window_slot,
    DROP COLUMN grants,
    ADD COLUMN tokens double precision NOT NULL DEFAULT 0,
    ADD COLUMN refilled_at timestamptz NOT NULL DEFAULT clock_timestamp();
COMMENT ON TABLE gstjobs.send_rates IS
    'each channel''s token bucket: refilled at the channel''s rate_per_second setting, taken from by every dispatcher (owner only)';

RESET ROLE;
