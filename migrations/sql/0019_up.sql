-- Each channel's rate as a schedule: the time its next message may go, shared by every
-- dispatcher. A run takes send times from it, a rate's interval apart, and its sender sends
-- each message at its time; two runs side by side (a tick's handover) send on the one
-- schedule. The sliding window of grants goes: it kept the grants within the rate, but each
-- run's sender spaced its sends on its own, and at a handover the draining run's sends went
-- between the new run's, closer than the rate allows. The pace starts afresh.
SET ROLE gstjobs_owner;

ALTER TABLE gstjobs.send_rates
    DROP COLUMN window_slot,
    DROP COLUMN grants,
    ADD COLUMN next_send_at timestamptz;
UPDATE gstjobs.send_rates SET pace = 1, slowed_at = NULL;
COMMENT ON TABLE gstjobs.send_rates IS
    'each channel''s send schedule: the time its next message may go, taken from by every dispatcher at the channel''s rate_per_second setting (owner only)';
COMMENT ON COLUMN gstjobs.send_rates.next_send_at IS
    'the time the next message may be sent: the last one taken goes a rate''s interval before it (NULL: none taken yet)';
COMMENT ON COLUMN gstjobs.send_rates.pace IS
    'the share of the channel''s rate it was cut to at slowed_at, by the provider answering 429 (too many); it recovers as time passes, so the schedule finds the provider''s own pace';

RESET ROLE;
