-- What a member receives, and when (docs/DELIVERY.md, "What a member receives, and when"):
-- per kind of notification, which channels (email, WhatsApp, none), as the firm sets for all
-- its members and a member's own choice overrides; and quiet hours in the firm's zone, per firm
-- and per member, through which messages that can wait are held. The firm application writes
-- all of it under row-level security; operators change it through audited functions
-- (`gstjobs prefs`, sql/25_preferences.sql). The jobs' notifying statement (plpy/common.py,
-- NOTIFY) reads it as it writes each message.
SET ROLE gstjobs_owner;

-- the kinds a member can be told about, each with what it says (health alerts go to operators
-- and are not a member's to choose)
CREATE TABLE gstjobs.notification_kinds (
    kind   text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z-]{1,40}$'),
    about  text NOT NULL CHECK (length(about) BETWEEN 1 AND 200)
);
COMMENT ON TABLE gstjobs.notification_kinds IS
    'the kinds of notification a member receives, and may choose channels for';
INSERT INTO gstjobs.notification_kinds (kind, about) VALUES
    ('sla-breach', 'a task assigned to the member passed its SLA'),
    ('sla-breach-escalation', 'a task of the member''s team (or firm, for partners) is 24 h+ past its SLA'),
    ('overdue', 'a task assigned to the member is past its due date'),
    ('overdue-escalation', 'a task of the member''s team (or firm) is still open after its due date'),
    ('hearing-reminder', 'a hearing on a case: 7 days, 1 day and the day before (cannot be switched off for today or tomorrow)'),
    ('deadline-alert', 'a deadline falls due: 7, 3, 1 and 0 days before (cannot be switched off within a day)'),
    ('deadline-overdue', 'a deadline passed and is still open'),
    ('deadline-time-bar', 'the department''s own time limit passed'),
    ('analytics-anomaly', 'the firm''s daily figures are unusual');

-- The channels a choice names: email, WhatsApp, both, or none (false, false). WhatsApp that
-- cannot go (the firm has not enabled it, no phone, no opt-in or an opt-out) is replaced by
-- email when email_instead says so. Messages of a kind that can wait are held through the
-- quiet hours unless through_quiet_hours says so. What cannot be switched off: a message of
-- urgency 0 or 1 (a hearing today or tomorrow, a deadline due today or tomorrow) goes by every
-- channel the member has when the choice would send it by none, and is never held.
CREATE TABLE litigation.notification_defaults (
    tenant_id            bigint NOT NULL REFERENCES litigation.tenants (id),
    kind                 text NOT NULL REFERENCES gstjobs.notification_kinds (kind),
    email                boolean NOT NULL,
    whatsapp             boolean NOT NULL,
    email_instead        boolean NOT NULL DEFAULT true,
    through_quiet_hours  boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind)
);
COMMENT ON TABLE litigation.notification_defaults IS
    'a firm''s choice, per kind of notification, for members without their own (none: email and WhatsApp, email instead of WhatsApp that cannot go, held through quiet hours)';

CREATE TABLE litigation.notification_preferences (
    tenant_id            bigint NOT NULL,
    member_id            bigint NOT NULL,
    kind                 text NOT NULL REFERENCES gstjobs.notification_kinds (kind),
    email                boolean NOT NULL,
    whatsapp             boolean NOT NULL,
    email_instead        boolean NOT NULL DEFAULT true,
    through_quiet_hours  boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, member_id, kind),
    -- a member the firm removes takes their choices along
    FOREIGN KEY (tenant_id, member_id) REFERENCES litigation.members (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE litigation.notification_preferences IS
    'a member''s own choice per kind of notification, over the firm''s (litigation.notification_defaults)';

-- Quiet hours, local to the firm's zone: [quiet_from, quiet_until), across midnight when
-- quiet_from is later; equal times: none. A member's own, when set, over the firm's.
ALTER TABLE litigation.tenants
    ADD COLUMN quiet_from time NOT NULL DEFAULT '21:00',
    ADD COLUMN quiet_until time NOT NULL DEFAULT '08:00';
COMMENT ON COLUMN litigation.tenants.quiet_from IS
    'quiet hours begin (firm''s zone): messages that can wait are held until quiet_until; equal times: no quiet hours';
ALTER TABLE litigation.members
    ADD COLUMN quiet_from time,
    ADD COLUMN quiet_until time,
    ADD CONSTRAINT members_quiet_hours_check CHECK ((quiet_from IS NULL) = (quiet_until IS NULL));
COMMENT ON COLUMN litigation.members.quiet_from IS
    'the member''s own quiet hours begin (firm''s zone); NULL: the firm''s; equal to quiet_until: none';

DO $$
DECLARE
    t regclass;
BEGIN
    FOREACH t IN ARRAY ARRAY['litigation.notification_defaults', 'litigation.notification_preferences']::regclass[] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %s TO gstjobs_app
            USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::bigint)
            WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::bigint)$p$, t);
    END LOOP;
END
$$;

RESET ROLE;

-- The firm application sets its own firm's and members' choices (never moving one to another
-- firm, member or kind: a choice is removed and made again); operators use the functions.
GRANT SELECT ON gstjobs.notification_kinds TO gstjobs_app, gstjobs_operator;
GRANT SELECT, INSERT, DELETE ON litigation.notification_defaults,
      litigation.notification_preferences TO gstjobs_app;
GRANT UPDATE (email, whatsapp, email_instead, through_quiet_hours, updated_at)
      ON litigation.notification_defaults, litigation.notification_preferences TO gstjobs_app;
GRANT UPDATE (quiet_from, quiet_until) ON litigation.tenants TO gstjobs_app;
