-- Back to 0018: the sliding window of grants, empty; the pace afresh.
SET ROLE gstjobs_owner;

ALTER TABLE gstjobs.send_rates
    DROP COLUMN next_send_at,
    ADD COLUMN window_slot bigint NOT NULL DEFAULT 0,
    ADD COLUMN grants integer[] NOT NULL DEFAULT array_fill(0, ARRAY[41])
        CHECK (cardinality(grants) = 41 AND array_lower(grants, 1) = 1
               AND 0 <= ALL (grants));
UPDATE gstjobs.send_rates SET pace = 1, slowed_at = NULL;
COMMENT ON TABLE gstjobs.send_rates IS
    'each channel''s sliding window: messages granted in the last second, kept within the channel''s rate_per_second setting by every dispatcher (owner only)';
COMMENT ON COLUMN gstjobs.send_rates.window_slot IS
    'the 25-ms slot (epoch seconds x 40) of grants[41], the latest; grants[1] is 40 slots before it';
COMMENT ON COLUMN gstjobs.send_rates.grants IS
    'messages granted in each of the 41 slots up to window_slot, oldest first';
COMMENT ON COLUMN gstjobs.send_rates.pace IS NULL;

RESET ROLE;
