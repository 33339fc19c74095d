-- Email that says how to choose what one receives (docs/DELIVERY.md, "What a member
-- receives, and when"): a firm may give the address of its page where a member changes their
-- choices; each email to a member then carries it in a plain footer and, as RFC 8058 one-click
-- unsubscription, in List-Unsubscribe and List-Unsubscribe-Post. The address may name the
-- member ({member}), the kind ({kind}) and the member's own token ({token}), which the firm's
-- page compares before it changes anything: a link cannot switch off another member's mail.
SET ROLE gstjobs_owner;

ALTER TABLE litigation.tenants
    ADD COLUMN preferences_url text
        CONSTRAINT tenants_preferences_url_https
        CHECK (preferences_url ~ '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$'
               AND preferences_url !~ '[<>"\\]' AND length(preferences_url) <= 500);
COMMENT ON COLUMN litigation.tenants.preferences_url IS
    'https address of the firm''s page where a member chooses what they receive; {member}, {kind} and {token} are filled in each email (RFC 8058 one-click unsubscription)';

ALTER TABLE litigation.members
    ADD COLUMN preferences_token uuid NOT NULL DEFAULT gen_random_uuid();
COMMENT ON COLUMN litigation.members.preferences_token IS
    'the member''s secret in their emails'' preferences address ({token}): the firm''s page compares it; set a new one to make old links useless';

-- the metrics count the messages an opt-out ended in the last day (gstjobs.outbox_metrics)
CREATE INDEX notifications_suppressed_idx ON gstjobs.notifications (channel, suppressed_at)
    WHERE status = 'suppressed';

RESET ROLE;

GRANT UPDATE (preferences_url) ON litigation.tenants TO gstjobs_app;
