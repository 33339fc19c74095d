-- What a firm may store agrees with what the jobs do with it (docs/JOBS.md, "Limits"): text
-- that reaches a subject, a header or a WhatsApp template holds no control character; email
-- addresses are ones Python's email package builds a message for; times and delays are
-- within bounds the jobs' arithmetic survives. New constraints are added NOT VALID, so rows
-- already stored are not refused by the migration; each is then validated if its table
-- allows, and a notice names those that do not (new writes are checked either way).

SET ROLE gstjobs_owner;

-- ---------------------------------------------------------------- the rules ----------------
CREATE FUNCTION litigation.is_plain_text(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog
    -- C0 and C1 control characters (line breaks, tabs, escapes, NEL), DEL, and the Unicode
    -- line and paragraph separators: none may reach a header, a subject or a template
    RETURN value !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]';
COMMENT ON FUNCTION litigation.is_plain_text(text) IS 'true for text with no control character or line separator';

CREATE FUNCTION litigation.is_email_address(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog
    -- one plain address: an RFC 5322 dot-atom local part, @, a host name of letters, digits
    -- and hyphens. The same rule as plpy/settings.py's (a test keeps them equal, and checks
    -- that Python's email package builds a message for every address it accepts).
    RETURN length(value) <= 254
       AND value ~ ('^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*'
                    '@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$');
COMMENT ON FUNCTION litigation.is_email_address(text) IS 'true for one plain email address, such as alerts@firm.example.in';

CREATE FUNCTION litigation.is_working_time(value timestamptz) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog
    -- a time a litigation practice can mean; the jobs add delays and local days to it
    RETURN value >= '2000-01-01 00:00+00' AND value < '2200-01-01 00:00+00';
COMMENT ON FUNCTION litigation.is_working_time(timestamptz) IS 'true for a time from 2000 up to 2200';

RESET ROLE;
-- The firm application may check its values before writing them; a function is executable
-- by PUBLIC unless revoked (the baseline revoked those of its time only).
REVOKE EXECUTE ON FUNCTION litigation.is_plain_text(text), litigation.is_email_address(text),
                           litigation.is_working_time(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION litigation.is_plain_text(text), litigation.is_email_address(text),
                          litigation.is_working_time(timestamptz) TO gstjobs_app;

-- ---------------------------------------------------------------- the limits ---------------
ALTER TABLE litigation.tenants
    ADD CONSTRAINT tenants_name_plain CHECK (litigation.is_plain_text(name)) NOT VALID,
    ADD CONSTRAINT tenants_email_from_address CHECK (litigation.is_email_address(email_from)) NOT VALID,
    ADD CONSTRAINT tenants_reply_to_address CHECK (litigation.is_email_address(reply_to)) NOT VALID,
    ADD CONSTRAINT tenants_escalation_delay_bounded CHECK (escalation_delay <= interval '30 days') NOT VALID;
ALTER TABLE litigation.members
    ADD CONSTRAINT members_name_plain CHECK (litigation.is_plain_text(name)) NOT VALID,
    ADD CONSTRAINT members_email_address CHECK (litigation.is_email_address(email)) NOT VALID;
ALTER TABLE litigation.clients
    ADD CONSTRAINT clients_name_plain CHECK (litigation.is_plain_text(name)) NOT VALID;
ALTER TABLE litigation.cases
    ADD CONSTRAINT cases_reference_plain CHECK (litigation.is_plain_text(reference)) NOT VALID;
ALTER TABLE litigation.hearings
    ADD CONSTRAINT hearings_forum_plain CHECK (litigation.is_plain_text(forum)) NOT VALID,
    ADD CONSTRAINT hearings_venue_plain CHECK (litigation.is_plain_text(venue)) NOT VALID,
    ADD CONSTRAINT hearings_starts_at_bounded CHECK (litigation.is_working_time(starts_at)) NOT VALID;
ALTER TABLE litigation.tasks
    ADD CONSTRAINT tasks_title_plain CHECK (litigation.is_plain_text(title)) NOT VALID,
    ADD CONSTRAINT tasks_times_bounded CHECK (litigation.is_working_time(due_at)
        AND litigation.is_working_time(sla_due_at) AND litigation.is_working_time(completed_at)) NOT VALID;
ALTER TABLE litigation.deadlines
    ADD CONSTRAINT deadlines_kind_plain CHECK (litigation.is_plain_text(kind)) NOT VALID,
    ADD CONSTRAINT deadlines_due_on_bounded CHECK (due_on >= '2000-01-01' AND due_on < '2200-01-01') NOT VALID;
ALTER TABLE litigation.case_events
    ADD CONSTRAINT case_events_document_ref_plain CHECK (litigation.is_plain_text(document_ref)) NOT VALID,
    ADD CONSTRAINT case_events_event_on_bounded CHECK (event_on < '2200-01-01') NOT VALID;
ALTER TABLE litigation.holiday_calendars
    ADD CONSTRAINT holiday_calendars_name_plain CHECK (litigation.is_plain_text(name)) NOT VALID;
ALTER TABLE litigation.holidays
    ADD CONSTRAINT holidays_name_plain CHECK (litigation.is_plain_text(name)) NOT VALID;

-- Validated where the rows already stored keep them; where not, they stay NOT VALID (checked
-- for every new write) and the migration says which and how many rows, changing no row.
DO $$
DECLARE
    constraint_row record;
    offending bigint;
BEGIN
    FOR constraint_row IN
        SELECT c.conrelid::regclass AS tab, c.conname AS name, pg_get_constraintdef(c.oid) AS def
        FROM pg_constraint AS c
        WHERE c.connamespace = 'litigation'::regnamespace AND c.contype = 'c' AND NOT c.convalidated
        ORDER BY 1, 2
    LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', constraint_row.tab, constraint_row.name);
        EXCEPTION WHEN check_violation THEN
            EXECUTE format('SELECT count(*) FROM %s WHERE NOT (%s)', constraint_row.tab,
                           substring(constraint_row.def FROM '^CHECK \((.*)\)( NOT VALID)?$'))
                INTO offending;
            RAISE NOTICE '% row(s) of % break %: kept as they are; new writes are checked (docs/JOBS.md, "Limits")',
                offending, constraint_row.tab, constraint_row.name;
        END;
    END LOOP;
END
$$;
