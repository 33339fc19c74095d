-- What a member receives, and when (docs/DELIVERY.md, "What a member receives, and when"):
-- quiet hours as the notifying statement applies them, the operators' view of every choice,
-- and the audited functions `gstjobs prefs` changes them with. The tables are revision
-- 0014's; the firm application writes them directly, under row-level security.
-- Re-applied on every upgrade to head: edit here, then `alembic upgrade head`.

SET ROLE gstjobs_owner;

-- The end of the quiet hours [quiet_from, quiet_until) of the zone that `at` falls in, or NULL
-- when `at` is outside them (equal times: none). Across midnight when quiet_from is later. A
-- local end that does not exist (a clock moved forward) is the instant the clock shows after
-- it; one that exists twice (moved back) is never before `at`. One expression, no subquery:
-- the planner inlines it into the notifying statement.
CREATE OR REPLACE FUNCTION gstjobs.quiet_hours_end(zone text, quiet_from time, quiet_until time, at timestamptz)
    RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN quiet_from <> quiet_until
     AND CASE WHEN quiet_from < quiet_until
              THEN (at AT TIME ZONE zone)::time >= quiet_from
                   AND (at AT TIME ZONE zone)::time < quiet_until
              ELSE (at AT TIME ZONE zone)::time >= quiet_from
                   OR (at AT TIME ZONE zone)::time < quiet_until END
    THEN greatest(at, ((at AT TIME ZONE zone)::date
                       -- after quiet_from, across midnight: tomorrow's quiet_until
                       + CASE WHEN quiet_from > quiet_until
                                   AND (at AT TIME ZONE zone)::time >= quiet_from THEN 1 ELSE 0 END
                       + quiet_until) AT TIME ZONE zone)
END;
COMMENT ON FUNCTION gstjobs.quiet_hours_end(text, time, time, timestamptz) IS
    'when the quiet hours that `at` falls in end, in the zone given; NULL outside them';

-- The first digest time at or after `at`: digest_at on one of digest_days (ISO weekdays), in
-- the zone given; a time the clock skips that day is the instant after the change.
CREATE OR REPLACE FUNCTION gstjobs.next_digest_at(zone text, digest_at time, digest_days smallint[], at timestamptz)
    RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN (
    SELECT min(moment)
    FROM generate_series(0, 7) AS ahead,
         LATERAL (SELECT (at AT TIME ZONE zone)::date + ahead AS day) AS d,
         LATERAL (SELECT (d.day + digest_at) AT TIME ZONE zone AS moment) AS m
    WHERE m.moment >= at AND extract(isodow FROM d.day)::smallint = ANY (digest_days));
COMMENT ON FUNCTION gstjobs.next_digest_at(text, time, smallint[], timestamptz) IS
    'the first digest time at or after `at`: digest_at on one of the ISO weekdays given, in the zone given';

-- Each firm's choice per kind (member NULL) and each member's, as they apply: the
-- member's own, else the firm's, else the default (email and WhatsApp, email instead of
-- WhatsApp that cannot go, held through quiet hours); and the quiet hours that apply.
CREATE OR REPLACE VIEW gstjobs.notification_choices AS
SELECT firm.id AS tenant_id, NULL::bigint AS member_id, NULL::text AS member, NULL::text AS role,
       NULL::boolean AS active, k.kind,
       -- a kind that never goes by WhatsApp: WhatsApp chosen is email instead, if so chosen
       coalesce(d.email, true)
       OR (NOT gstjobs.goes_by_whatsapp(k.kind) AND coalesce(d.whatsapp, true)
           AND coalesce(d.email_instead, true)) AS email,
       coalesce(d.whatsapp, true) AND gstjobs.goes_by_whatsapp(k.kind) AS whatsapp,
       coalesce(d.email_instead, true) AS email_instead,
       coalesce(d.through_quiet_hours, false) AS through_quiet_hours,
       coalesce(d.digest, false) AS digest,
       CASE WHEN d.kind IS NOT NULL THEN 'firm' ELSE 'default' END AS chosen_by,
       firm.quiet_from, firm.quiet_until, 'firm' AS quiet_hours_by,
       firm.digest_at, firm.digest_days,
       NULL::boolean AS has_email, NULL::boolean AS whatsapp_reaches
FROM litigation.tenants AS firm
CROSS JOIN gstjobs.notification_kinds AS k
LEFT JOIN litigation.notification_defaults AS d ON d.tenant_id = firm.id AND d.kind = k.kind
UNION ALL
SELECT m.tenant_id, m.id, m.name, m.role, m.active, k.kind,
       coalesce(p.email, d.email, true)
       OR (NOT gstjobs.goes_by_whatsapp(k.kind) AND coalesce(p.whatsapp, d.whatsapp, true)
           AND coalesce(p.email_instead, d.email_instead, true)),
       coalesce(p.whatsapp, d.whatsapp, true) AND gstjobs.goes_by_whatsapp(k.kind),
       coalesce(p.email_instead, d.email_instead, true),
       coalesce(p.through_quiet_hours, d.through_quiet_hours, false),
       coalesce(p.digest, d.digest, false),
       CASE WHEN p.kind IS NOT NULL THEN 'member' WHEN d.kind IS NOT NULL THEN 'firm'
            ELSE 'default' END,
       coalesce(m.quiet_from, firm.quiet_from), coalesce(m.quiet_until, firm.quiet_until),
       CASE WHEN m.quiet_from IS NOT NULL THEN 'member' ELSE 'firm' END,
       coalesce(m.digest_at, firm.digest_at), coalesce(m.digest_days, firm.digest_days),
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

-- The firm's choice for a kind (member_id NULL) or a member's own, set by an operator: the
-- fields given ({"email": true, "whatsapp": false, "email_instead": .., "through_quiet_hours":
-- ..}) over the choice that applies now; NULL removes it (the member's: the firm's applies
-- again; the firm's: the default). Audited, with what applied before and after.
CREATE OR REPLACE FUNCTION gstjobs.set_notification_choice(
    tenant_id bigint, member_id bigint, kind text, choice jsonb, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fields CONSTANT text[] := ARRAY['email', 'whatsapp', 'email_instead', 'through_quiet_hours', 'digest'];
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
    IF choice -> 'whatsapp' = 'true'::jsonb AND NOT gstjobs.goes_by_whatsapp(kind) THEN
        RAISE EXCEPTION '% does not go by WhatsApp: it is a list, not a WhatsApp template message', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'choose email, or the digest';
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
                (tenant_id, kind, email, whatsapp, email_instead, through_quiet_hours, digest)
            SELECT set_notification_choice.tenant_id, set_notification_choice.kind, r.email,
                   r.whatsapp, r.email_instead, r.through_quiet_hours, r.digest
            FROM jsonb_to_record(wanted) AS r (email boolean, whatsapp boolean,
                                               email_instead boolean, through_quiet_hours boolean,
                                               digest boolean)
            ON CONFLICT ON CONSTRAINT notification_defaults_pkey DO UPDATE
            SET email = excluded.email, whatsapp = excluded.whatsapp,
                email_instead = excluded.email_instead,
                through_quiet_hours = excluded.through_quiet_hours, digest = excluded.digest,
                updated_at = now();
        ELSE
            INSERT INTO litigation.notification_preferences AS p
                (tenant_id, member_id, kind, email, whatsapp, email_instead, through_quiet_hours,
                 digest)
            SELECT set_notification_choice.tenant_id, set_notification_choice.member_id,
                   set_notification_choice.kind, r.email, r.whatsapp, r.email_instead,
                   r.through_quiet_hours, r.digest
            FROM jsonb_to_record(wanted) AS r (email boolean, whatsapp boolean,
                                               email_instead boolean, through_quiet_hours boolean,
                                               digest boolean)
            ON CONFLICT ON CONSTRAINT notification_preferences_pkey DO UPDATE
            SET email = excluded.email, whatsapp = excluded.whatsapp,
                email_instead = excluded.email_instead,
                through_quiet_hours = excluded.through_quiet_hours, digest = excluded.digest,
                updated_at = now();
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

-- The choice that applies to a firm (member NULL) or member for a kind, as the view says it.
CREATE OR REPLACE FUNCTION gstjobs.notification_choice(tenant_id bigint, member_id bigint, kind text)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT jsonb_build_object('email', v.email, 'whatsapp', v.whatsapp,
                              'email_instead', v.email_instead,
                              'through_quiet_hours', v.through_quiet_hours,
                              'digest', v.digest,
                              'chosen_by', v.chosen_by)
    FROM gstjobs.notification_choices AS v
    WHERE v.tenant_id = notification_choice.tenant_id
      AND v.member_id IS NOT DISTINCT FROM notification_choice.member_id
      AND v.kind = notification_choice.kind);
COMMENT ON FUNCTION gstjobs.notification_choice(bigint, bigint, text) IS
    'the choice of channels that applies to a firm (member NULL) or a member for a kind';

-- What an operator's change of choices names must exist: the firm, the member in it; and the
-- reason fit the audit log.
CREATE OR REPLACE FUNCTION gstjobs.check_choice_target(tenant_id bigint, member_id bigint, reason text)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM litigation.tenants AS t WHERE t.id = check_choice_target.tenant_id) THEN
        RAISE EXCEPTION 'no firm %', tenant_id
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs firm list shows the firms';
    END IF;
    IF member_id IS NOT NULL AND NOT EXISTS (
           SELECT FROM litigation.members AS m
           WHERE m.tenant_id = check_choice_target.tenant_id AND m.id = check_choice_target.member_id) THEN
        RAISE EXCEPTION 'firm % has no member %', tenant_id, member_id
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs prefs show --tenant N lists its members';
    END IF;
    IF length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is % characters long; at most 1000 are kept', length(reason)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
END
$$;
COMMENT ON FUNCTION gstjobs.check_choice_target(bigint, bigint, text) IS
    'raises unless the firm, and the member in it, exist and the reason fits the audit log';

-- A firm's quiet hours (member NULL: two times; equal: none) or a member's own (NULL and NULL:
-- the firm's again), set by an operator; audited.
CREATE OR REPLACE FUNCTION gstjobs.set_quiet_hours(
    tenant_id bigint, member_id bigint, quiet_from time, quiet_until time, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    before jsonb;
    after jsonb;
BEGIN
    PERFORM gstjobs.check_choice_target(tenant_id, member_id, reason);
    IF (quiet_from IS NULL) <> (quiet_until IS NULL) OR (member_id IS NULL AND quiet_from IS NULL) THEN
        RAISE EXCEPTION 'quiet hours are two times, from and until (equal times: none)%',
                        CASE WHEN member_id IS NOT NULL THEN '; or neither, for the firm''s' ELSE '' END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    before := gstjobs.quiet_hours_of(tenant_id, member_id);
    IF member_id IS NULL THEN
        UPDATE litigation.tenants AS t
        SET quiet_from = set_quiet_hours.quiet_from, quiet_until = set_quiet_hours.quiet_until
        WHERE t.id = set_quiet_hours.tenant_id;
    ELSE
        UPDATE litigation.members AS m
        SET quiet_from = set_quiet_hours.quiet_from, quiet_until = set_quiet_hours.quiet_until
        WHERE m.tenant_id = set_quiet_hours.tenant_id AND m.id = set_quiet_hours.member_id;
    END IF;
    after := gstjobs.quiet_hours_of(tenant_id, member_id);
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('quiet-hours.set', jsonb_build_object('firm_id', tenant_id, 'member_id', member_id,
                                                  'old', before, 'new', after), reason);
    RETURN jsonb_build_object('firm_id', tenant_id, 'member_id', member_id) || after;
END
$$;
COMMENT ON FUNCTION gstjobs.set_quiet_hours(bigint, bigint, time, time, text) IS
    'sets a firm''s quiet hours, or a member''s own (NULL, NULL: the firm''s); audited';

CREATE OR REPLACE FUNCTION gstjobs.quiet_hours_of(tenant_id bigint, member_id bigint)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT jsonb_build_object('quiet_from', coalesce(m.quiet_from, firm.quiet_from),
                              'quiet_until', coalesce(m.quiet_until, firm.quiet_until),
                              'quiet_hours_by', CASE WHEN m.quiet_from IS NOT NULL THEN 'member' ELSE 'firm' END)
    FROM litigation.tenants AS firm
    LEFT JOIN litigation.members AS m
           ON m.tenant_id = firm.id AND m.id = quiet_hours_of.member_id
    WHERE firm.id = quiet_hours_of.tenant_id);
COMMENT ON FUNCTION gstjobs.quiet_hours_of(bigint, bigint) IS
    'the quiet hours that apply to a firm (member NULL) or member, and whose they are';

-- A firm's digest time (member NULL) or a member's own, set by an operator: the fields given,
-- {"digest_at": "07:30", "digest_days": [1, 2, 3, 4, 5]} (ISO weekdays, 1 Monday); a member's
-- null: the firm's again. Audited, with what applied before and after.
CREATE OR REPLACE FUNCTION gstjobs.set_digest_time(
    tenant_id bigint, member_id bigint, times jsonb, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_at time;
    new_days smallint[];
    before jsonb;
    after jsonb;
BEGIN
    PERFORM gstjobs.check_choice_target(tenant_id, member_id, reason);
    IF jsonb_typeof(times) IS DISTINCT FROM 'object' OR times = '{}'
       OR EXISTS (SELECT FROM jsonb_object_keys(times) AS k WHERE k NOT IN ('digest_at', 'digest_days')) THEN
        RAISE EXCEPTION 'digest times are {"digest_at": "HH:MM", "digest_days": [1..7]}, one or both, not %',
                        left(times::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF member_id IS NULL AND (times -> 'digest_at' = 'null' OR times -> 'digest_days' = 'null') THEN
        RAISE EXCEPTION 'a firm''s digest time and days are values, not null (null is a member''s: the firm''s)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(times -> 'digest_at') NOT IN ('string', 'null')
       OR jsonb_typeof(times -> 'digest_days') NOT IN ('array', 'null')
       OR EXISTS (SELECT FROM jsonb_array_elements(CASE jsonb_typeof(times -> 'digest_days')
                                                       WHEN 'array' THEN times -> 'digest_days' END) AS d
                  WHERE jsonb_typeof(d) <> 'number' OR d::text !~ '^[1-7]$') THEN
        RAISE EXCEPTION 'digest_at is a time ("07:30"), digest_days ISO weekdays (1 Monday .. 7 Sunday), not %',
                        left(times::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    new_at := (times ->> 'digest_at')::time;
    SELECT array_agg(DISTINCT d::smallint ORDER BY d::smallint) INTO new_days
    FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(times -> 'digest_days') = 'array'
                                        THEN times -> 'digest_days' END) AS d;
    IF jsonb_typeof(times -> 'digest_days') = 'array' AND new_days IS NULL THEN
        RAISE EXCEPTION 'digest_days names at least one day'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    before := gstjobs.digest_time_of(tenant_id, member_id);
    IF member_id IS NULL THEN
        UPDATE litigation.tenants AS t
        SET digest_at = CASE WHEN times ? 'digest_at' THEN new_at ELSE t.digest_at END,
            digest_days = CASE WHEN times ? 'digest_days' THEN new_days ELSE t.digest_days END
        WHERE t.id = set_digest_time.tenant_id;
    ELSE
        UPDATE litigation.members AS m
        SET digest_at = CASE WHEN times ? 'digest_at' THEN new_at ELSE m.digest_at END,
            digest_days = CASE WHEN times ? 'digest_days' THEN new_days ELSE m.digest_days END
        WHERE m.tenant_id = set_digest_time.tenant_id AND m.id = set_digest_time.member_id;
    END IF;
    after := gstjobs.digest_time_of(tenant_id, member_id);
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('digest-time.set', jsonb_build_object('firm_id', tenant_id, 'member_id', member_id,
                                                  'old', before, 'new', after), reason);
    RETURN jsonb_build_object('firm_id', tenant_id, 'member_id', member_id) || after;
END
$$;
COMMENT ON FUNCTION gstjobs.set_digest_time(bigint, bigint, jsonb, text) IS
    'sets a firm''s digest time and days, or a member''s own (null: the firm''s); audited';

CREATE OR REPLACE FUNCTION gstjobs.digest_time_of(tenant_id bigint, member_id bigint)
    RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT jsonb_build_object('digest_at', coalesce(m.digest_at, firm.digest_at),
                              'digest_days', coalesce(m.digest_days, firm.digest_days),
                              'digest_at_by', CASE WHEN m.digest_at IS NOT NULL THEN 'member' ELSE 'firm' END,
                              'digest_days_by', CASE WHEN m.digest_days IS NOT NULL THEN 'member' ELSE 'firm' END)
    FROM litigation.tenants AS firm
    LEFT JOIN litigation.members AS m
           ON m.tenant_id = firm.id AND m.id = digest_time_of.member_id
    WHERE firm.id = digest_time_of.tenant_id);
COMMENT ON FUNCTION gstjobs.digest_time_of(bigint, bigint) IS
    'the digest time and days that apply to a firm (member NULL) or member, and whose they are';

RESET ROLE;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gstjobs.set_notification_choice(bigint, bigint, text, jsonb, text),
                          gstjobs.set_quiet_hours(bigint, bigint, time, time, text),
                          gstjobs.set_digest_time(bigint, bigint, jsonb, text)
    TO gstjobs_operator;
GRANT SELECT ON gstjobs.notification_choices TO gstjobs_operator;
-- the view calls them as its reader: the consent rule, over the row it is given, and whether a
-- kind may go by WhatsApp; nothing else
GRANT EXECUTE ON FUNCTION gstjobs.whatsapp_consented(litigation.whatsapp_consents),
                          gstjobs.goes_by_whatsapp(text)
    TO gstjobs_operator;
