-- Back to 0013: no choices, no quiet hours (messages held by them are due at once).
SET ROLE gstjobs_owner;

-- what 0014 brought among the re-applied objects (sql/): gone with it
DROP FUNCTION gstjobs.set_notification_choice(bigint, bigint, text, jsonb, text);
DROP FUNCTION gstjobs.notification_choice(bigint, bigint, text);
DROP VIEW gstjobs.notification_choices;
DROP FUNCTION gstjobs.set_quiet_hours(bigint, bigint, time, time, text);
DROP FUNCTION gstjobs.quiet_hours_of(bigint, bigint);
DROP FUNCTION gstjobs.check_choice_target(bigint, bigint, text);
DROP FUNCTION gstjobs.quiet_hours_end(text, time, time, timestamptz);

-- the consent function as 0013 left it: it no longer reads the choices that go
CREATE OR REPLACE FUNCTION gstjobs.honour_consent(tenant_id bigint, member_id bigint)
    RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH suppressed AS (
        UPDATE gstjobs.notifications AS n
        SET status = 'suppressed', suppressed_at = clock_timestamp(),
            last_error = format('not sent: opted out of WhatsApp %s (%s)',
                                coalesce('at ' || c.opted_out_at, 'or never opted in'),
                                coalesce(c.opted_out_how, c.opted_in_how))
        FROM litigation.whatsapp_consents AS c
        WHERE c.tenant_id = honour_consent.tenant_id AND c.member_id = honour_consent.member_id
          AND NOT gstjobs.whatsapp_consented(c)
          AND n.tenant_id = c.tenant_id AND n.member_id = c.member_id AND n.channel = 'whatsapp'
          AND n.status IN ('pending', 'failed') AND n.claimed_by IS NULL
        RETURNING 1)
    SELECT count(*)::integer FROM suppressed;
END;

DROP TABLE litigation.notification_preferences;
DROP TABLE litigation.notification_defaults;
DROP TABLE gstjobs.notification_kinds;
ALTER TABLE litigation.members DROP COLUMN quiet_from, DROP COLUMN quiet_until;
ALTER TABLE litigation.tenants DROP COLUMN quiet_from, DROP COLUMN quiet_until;

-- held through quiet hours: due now (a 429's short pause, the one other pending message due
-- later, is cut short: no attempt is spent on it)
UPDATE gstjobs.notifications SET next_attempt_at = now()
WHERE status = 'pending' AND next_attempt_at > now();

RESET ROLE;
