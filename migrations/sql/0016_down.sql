-- Back to 0015: no digests. Items still waiting for a digest are dropped into the member's
-- email as single messages (channel email, due now); digested items are kept as sent.
SET ROLE gstjobs_owner;

DROP FUNCTION gstjobs.next_digest_at(text, time, smallint[], timestamptz);

-- the operators' view of the choices, and the functions over it, as 0015 had them (head's
-- name the digest columns that go)
DROP FUNCTION gstjobs.notification_choice(bigint, bigint, text);
DROP VIEW gstjobs.notification_choices;
CREATE VIEW gstjobs.notification_choices AS
SELECT firm.id AS tenant_id, NULL::bigint AS member_id, NULL::text AS member, NULL::text AS role,
       NULL::boolean AS active, k.kind,
       coalesce(d.email, true) AS email, coalesce(d.whatsapp, true) AS whatsapp,
       coalesce(d.email_instead, true) AS email_instead,
       coalesce(d.through_quiet_hours, false) AS through_quiet_hours,
       CASE WHEN d.kind IS NOT NULL THEN 'firm' ELSE 'default' END AS chosen_by,
       firm.quiet_from, firm.quiet_until, 'firm' AS quiet_hours_by,
       NULL::boolean AS has_email, NULL::boolean AS whatsapp_reaches
FROM litigation.tenants AS firm
CROSS JOIN gstjobs.notification_kinds AS k
LEFT JOIN litigation.notification_defaults AS d ON d.tenant_id = firm.id AND d.kind = k.kind
UNION ALL
SELECT m.tenant_id, m.id, m.name, m.role, m.active, k.kind,
       coalesce(p.email, d.email, true), coalesce(p.whatsapp, d.whatsapp, true),
       coalesce(p.email_instead, d.email_instead, true),
       coalesce(p.through_quiet_hours, d.through_quiet_hours, false),
       CASE WHEN p.kind IS NOT NULL THEN 'member' WHEN d.kind IS NOT NULL THEN 'firm'
            ELSE 'default' END,
       coalesce(m.quiet_from, firm.quiet_from), coalesce(m.quiet_until, firm.quiet_until),
       CASE WHEN m.quiet_from IS NOT NULL THEN 'member' ELSE 'firm' END,
       m.email IS NOT NULL,
       firm.whatsapp_enabled AND m.phone IS NOT NULL AND coalesce(gstjobs.whatsapp_consented(c), false)
FROM litigation.members AS m
JOIN litigation.tenants AS firm ON firm.id = m.tenant_id
CROSS JOIN gstjobs.notification_kinds AS k
LEFT JOIN litigation.notification_preferences AS p
     ON p.tenant_id = m.tenant_id AND p.member_id = m.id AND p.kind = k.kind
LEFT JOIN litigation.notification_defaults AS d ON d.tenant_id = m.tenant_id AND d.kind = k.kind
LEFT JOIN litigation.whatsapp_consents AS c ON c.tenant_id = m.tenant_id AND c.member_id = m.id;
COMMENT ON VIEW gstjobs.notification_choices IS
    'per firm (member NULL) and member, and kind: the channels and quiet hours that apply, and whose choice they are';

CREATE OR REPLACE FUNCTION gstjobs.notification_choice(tenant_id bigint, member_id bigint, kind text)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT jsonb_build_object('email', v.email, 'whatsapp', v.whatsapp,
                              'email_instead', v.email_instead,
                              'through_quiet_hours', v.through_quiet_hours,
                              'chosen_by', v.chosen_by)
    FROM gstjobs.notification_choices AS v
    WHERE v.tenant_id = notification_choice.tenant_id
      AND v.member_id IS NOT DISTINCT FROM notification_choice.member_id
      AND v.kind = notification_choice.kind);
COMMENT ON FUNCTION gstjobs.notification_choice(bigint, bigint, text) IS
    'the choice of channels that applies to a firm (member NULL) or a member for a kind';

CREATE OR REPLACE FUNCTION gstjobs.set_notification_choice(
    tenant_id bigint, member_id bigint, kind text, choice jsonb, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fields CONSTANT text[] := ARRAY['email', 'whatsapp', 'email_instead', 'through_quiet_hours'];
    before jsonb;
    after jsonb;
    wanted jsonb;
BEGIN
    PERFORM gstjobs.check_choice_target(tenant_id, member_id, reason);
    IF NOT EXISTS (SELECT FROM gstjobs.notification_kinds AS k WHERE k.kind = set_notification_choice.kind) THEN
        RAISE EXCEPTION 'no kind of notification %', quote_literal(left(kind, 60))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = (SELECT 'the kinds: ' || string_agg(k.kind, ', ' ORDER BY k.kind)
                          FROM gstjobs.notification_kinds AS k);
    END IF;
    IF choice IS NOT NULL AND (
           jsonb_typeof(choice) IS DISTINCT FROM 'object' OR choice = '{}'
           OR EXISTS (SELECT FROM jsonb_each(choice) AS c (key, value)
                      WHERE c.key <> ALL (fields) OR jsonb_typeof(c.value) <> 'boolean')) THEN
        RAISE EXCEPTION 'a choice is a JSON object of true or false for any of %', array_to_string(fields, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    before := gstjobs.notification_choice(tenant_id, member_id, kind);
    IF choice IS NULL THEN
        DELETE FROM litigation.notification_defaults AS d
        WHERE set_notification_choice.member_id IS NULL
          AND d.tenant_id = set_notification_choice.tenant_id AND d.kind = set_notification_choice.kind;
        DELETE FROM litigation.notification_preferences AS p
        WHERE p.tenant_id = set_notification_choice.tenant_id
          AND p.member_id = set_notification_choice.member_id AND p.kind = set_notification_choice.kind;
    ELSE
        wanted := (before - 'chosen_by') || choice;
        IF member_id IS NULL THEN
            INSERT INTO litigation.notification_defaults AS d
                (tenant_id, kind, email, whatsapp, email_instead, through_quiet_hours)
            SELECT set_notification_choice.tenant_id, set_notification_choice.kind, r.email,
                   r.whatsapp, r.email_instead, r.through_quiet_hours
            FROM jsonb_to_record(wanted) AS r (email boolean, whatsapp boolean,
                                               email_instead boolean, through_quiet_hours boolean)
            ON CONFLICT ON CONSTRAINT notification_defaults_pkey DO UPDATE
            SET email = excluded.email, whatsapp = excluded.whatsapp,
                email_instead = excluded.email_instead,
                through_quiet_hours = excluded.through_quiet_hours, updated_at = now();
        ELSE
            INSERT INTO litigation.notification_preferences AS p
                (tenant_id, member_id, kind, email, whatsapp, email_instead, through_quiet_hours)
            SELECT set_notification_choice.tenant_id, set_notification_choice.member_id,
                   set_notification_choice.kind, r.email, r.whatsapp, r.email_instead,
                   r.through_quiet_hours
            FROM jsonb_to_record(wanted) AS r (email boolean, whatsapp boolean,
                                               email_instead boolean, through_quiet_hours boolean)
            ON CONFLICT ON CONSTRAINT notification_preferences_pkey DO UPDATE
            SET email = excluded.email, whatsapp = excluded.whatsapp,
                email_instead = excluded.email_instead,
                through_quiet_hours = excluded.through_quiet_hours, updated_at = now();
        END IF;
    END IF;
    after := gstjobs.notification_choice(tenant_id, member_id, kind);
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('notification-choice.' || CASE WHEN choice IS NULL THEN 'reset' ELSE 'set' END,
            jsonb_build_object('firm_id', tenant_id, 'member_id', member_id, 'kind', kind,
                               'old', before, 'new', after),
            reason);
    RETURN jsonb_build_object('firm_id', tenant_id, 'member_id', member_id, 'kind', kind) || after;
END
$$;
COMMENT ON FUNCTION gstjobs.set_notification_choice(bigint, bigint, text, jsonb, text) IS
    'sets (or, with NULL, removes) a firm''s or a member''s choice of channels for a kind of notification; audited';

UPDATE gstjobs.notifications SET channel = 'email', next_attempt_at = now(),
       dedupe_key = regexp_replace(dedupe_key, ':digest$', ':email')
WHERE channel = 'digest' AND status = 'pending';
UPDATE gstjobs.notifications SET status = 'sent', sent_at = coalesce(sent_at, now()), digest_id = NULL
WHERE status = 'digested';
DROP INDEX gstjobs.notifications_digested_idx;
ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_digested_check;
ALTER TABLE gstjobs.notifications DROP COLUMN digest_id;
ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'dead', 'suppressed'));
ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('email', 'whatsapp'));

ALTER TABLE litigation.notification_defaults DROP COLUMN digest;
ALTER TABLE litigation.notification_preferences DROP COLUMN digest;
ALTER TABLE litigation.tenants DROP COLUMN digest_at, DROP COLUMN digest_days;
ALTER TABLE litigation.members DROP COLUMN digest_at, DROP COLUMN digest_days;

RESET ROLE;
GRANT SELECT ON gstjobs.notification_choices TO gstjobs_operator;
REVOKE ALL ON FUNCTION gstjobs.notification_choice(bigint, bigint, text) FROM PUBLIC;
