-- Digests (docs/DELIVERY.md, "What a member receives, and when"): a member may choose, per
-- kind, one email at a time of their choosing, in the firm's zone, that lists what came since
-- the last one, instead of a message each. The notifying statement writes each such item to
-- the outbox on channel `digest`, due at the member's next digest time; dispatch-notifications
-- turns the items due into one email per member in one statement, marking each item
-- `digested` with the id of the email that carries it: each item in exactly one digest,
-- whatever crashes or overlaps.
SET ROLE gstjobs_owner;

ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('email', 'whatsapp', 'digest'));
ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'dead', 'suppressed', 'digested'));
ALTER TABLE gstjobs.notifications ADD COLUMN digest_id bigint;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_digested_check
    CHECK ((status = 'digested') = (digest_id IS NOT NULL));
COMMENT ON COLUMN gstjobs.notifications.digest_id IS
    'the digest email that carries this item (status digested)';

-- purge-history takes a digest's items as they get old (their words are in the digest email)
CREATE INDEX notifications_digested_idx ON gstjobs.notifications (created_at)
    WHERE status = 'digested';

ALTER TABLE litigation.notification_defaults ADD COLUMN digest boolean NOT NULL DEFAULT false;
ALTER TABLE litigation.notification_preferences ADD COLUMN digest boolean NOT NULL DEFAULT false;

-- when digests go: at digest_at, firm's zone, on the ISO weekdays given (1 Monday .. 7 Sunday)
ALTER TABLE litigation.tenants
    ADD COLUMN digest_at time NOT NULL DEFAULT '08:00',
    ADD COLUMN digest_days smallint[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}'
        CONSTRAINT tenants_digest_days_check
        CHECK (cardinality(digest_days) BETWEEN 1 AND 7 AND digest_days <@ '{1,2,3,4,5,6,7}');
ALTER TABLE litigation.members
    ADD COLUMN digest_at time,
    ADD COLUMN digest_days smallint[]
        CONSTRAINT members_digest_days_check
        CHECK (cardinality(digest_days) BETWEEN 1 AND 7 AND digest_days <@ '{1,2,3,4,5,6,7}');
COMMENT ON COLUMN litigation.members.digest_at IS
    'the member''s own digest time (firm''s zone); NULL: the firm''s';

RESET ROLE;

GRANT UPDATE (digest) ON litigation.notification_defaults, litigation.notification_preferences
    TO gstjobs_app;
GRANT UPDATE (digest_at, digest_days) ON litigation.tenants TO gstjobs_app;
