-- WhatsApp consent (docs/DELIVERY.md, "WhatsApp consent"). WhatsApp's business rules want a
-- recipient's opt-in before template messages are sent, and an opt-out honoured at once. The
-- firm application records both, for its own members only (row-level security); the jobs write
-- WhatsApp messages only to members whose latest word is yes (gstjobs.whatsapp_consented, in
-- every notifying statement), and an opt-out ends what still waits for the member on WhatsApp
-- as `suppressed`: a terminal status, never sent, with the reason.
SET ROLE gstjobs_owner;

CREATE TABLE litigation.whatsapp_consents (
    tenant_id     bigint NOT NULL,
    member_id     bigint NOT NULL,
    opted_in_at   timestamptz,
    opted_in_how  text CHECK (length(opted_in_how) BETWEEN 1 AND 200
                              AND litigation.is_plain_text(opted_in_how)),
    opted_out_at  timestamptz,
    opted_out_how text CHECK (length(opted_out_how) BETWEEN 1 AND 200
                              AND litigation.is_plain_text(opted_out_how)),
    PRIMARY KEY (tenant_id, member_id),
    -- a member the firm removes takes their record along (no message can go to them any more;
    -- kept, it would stop the firm application, which may not delete it, from removing them)
    FOREIGN KEY (tenant_id, member_id) REFERENCES litigation.members (tenant_id, id) ON DELETE CASCADE,
    -- when, and how (a form, a reply "STOP", a call), together
    CONSTRAINT opt_in_told CHECK ((opted_in_at IS NULL) = (opted_in_how IS NULL)),
    CONSTRAINT opt_out_told CHECK ((opted_out_at IS NULL) = (opted_out_how IS NULL)),
    CONSTRAINT something_told CHECK (opted_in_at IS NOT NULL OR opted_out_at IS NOT NULL)
);
COMMENT ON TABLE litigation.whatsapp_consents IS
    'a member''s WhatsApp opt-in and opt-out (when, how), written by the firm application; the latest says';

ALTER TABLE litigation.whatsapp_consents ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON litigation.whatsapp_consents TO gstjobs_app
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::bigint);

ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'dead', 'suppressed'));
ALTER TABLE gstjobs.notifications ADD COLUMN suppressed_at timestamptz;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_suppressed_check
    CHECK ((status = 'suppressed') = (suppressed_at IS NOT NULL));
COMMENT ON COLUMN gstjobs.notifications.suppressed_at IS
    'when it was ended unsent (its recipient opted out of its channel); last_error says why';

-- An opt-out (or an opt-in withdrawn) takes effect at once: what waits for the member on
-- WhatsApp is suppressed, by the owner (the firm application may not write the outbox), for
-- this member of this firm only. gstjobs.honour_consent (re-applied, sql/20_templates.sql) does it.
CREATE FUNCTION litigation.consent_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM gstjobs.honour_consent(NEW.tenant_id, NEW.member_id);
    RETURN NULL;
END
$$;
-- only for a word that is not an opt-in (gstjobs.whatsapp_consented's rule, written out: the
-- function is re-applied after this revision): recording opt-ins costs no look at the outbox
CREATE TRIGGER consent_recorded AFTER INSERT OR UPDATE ON litigation.whatsapp_consents
    FOR EACH ROW
    WHEN (NEW.opted_in_at IS NULL OR NEW.opted_out_at >= NEW.opted_in_at)
    EXECUTE FUNCTION litigation.consent_changed();

RESET ROLE;

-- a trigger's function: nobody calls it
REVOKE EXECUTE ON FUNCTION litigation.consent_changed() FROM PUBLIC;

-- The firm application records its members' word; a record is corrected, never deleted (the
-- opt-in's when and how is the proof WhatsApp asks for), and never moved to another member.
GRANT SELECT, INSERT ON litigation.whatsapp_consents TO gstjobs_app;
GRANT UPDATE (opted_in_at, opted_in_how, opted_out_at, opted_out_how)
    ON litigation.whatsapp_consents TO gstjobs_app;
