-- Every notification's words, in one place. {name} placeholders are filled by gstjobs.render_subject()
-- and gstjobs.render_body(), compiled below
-- from the values each job supplies (listed beside each template). Times arrive already in the
-- firm's zone with its abbreviation, e.g. "Tue 08 Dec 2026, 10:30 IST".
-- Re-applied on every upgrade to head: edit here, then `alembic upgrade head`.

SET ROLE gstjobs_owner;

CREATE OR REPLACE VIEW gstjobs.templates (kind, subject, body) AS VALUES
    -- firm, recipient, task, case_reference, section, client, priority, due_local, assignee
    ('sla-breach',
     'SLA breached: {task} ({case_reference})',
     E'Dear {recipient},\n\nThe task "{task}" on case {case_reference} (section {section}, {client}) '
     || E'passed its SLA at {due_local}. Priority: {priority}.\n\n{firm}, sent by gstjobs'),
    ('sla-breach-escalation',
     'Escalation: SLA breached 24 h+ on {case_reference}: {task}',
     E'Dear {recipient},\n\nThe task "{task}" assigned to {assignee} on case {case_reference} '
     || E'(section {section}, {client}) passed its SLA at {due_local} and is still open. '
     || E'Priority: {priority}.\n\n{firm}, sent by gstjobs'),
    ('overdue',
     'Overdue: {task} ({case_reference})',
     E'Dear {recipient},\n\nThe task "{task}" on case {case_reference} (section {section}, {client}) '
     || E'was due at {due_local} and is not completed. Priority: {priority}.\n\n{firm}, sent by gstjobs'),
    ('overdue-escalation',
     'Escalation: task overdue on {case_reference}: {task}',
     E'Dear {recipient},\n\nThe task "{task}" assigned to {assignee} on case {case_reference} '
     || E'(section {section}, {client}) was due at {due_local} and is still open. '
     || E'Priority: {priority}.\n\n{firm}, sent by gstjobs'),
    -- firm, recipient, when, hearing_local, case_reference, section, client, forum, venue
    ('hearing-reminder',
     'Hearing {when}: {case_reference} before {forum}',
     E'Dear {recipient},\n\nCase {case_reference} ({client}, section {section}) is listed {when}, '
     || E'{hearing_local}, before the {forum}, {venue}.{late}\n\n{firm}, sent by gstjobs'),
    -- firm, recipient, when, deadline, due_local, case_reference, section, client, owner,
    -- basis (a computed deadline: a paragraph naming the rule, section and dates; else empty)
    ('deadline-alert',
     'Deadline {when}: {deadline} ({case_reference})',
     E'Dear {recipient},\n\n{deadline} on case {case_reference} ({client}, section {section}) '
     || E'falls due {when}, on {due_local}.{basis}{late}\n\n{firm}, sent by gstjobs'),
    ('deadline-overdue',
     'Deadline passed: {deadline} ({case_reference})',
     E'Dear {recipient},\n\n{deadline} on case {case_reference} ({client}, section {section}) '
     || E'fell due on {due_local} and is still open. Owner: {owner}.{basis}{late}\n\n{firm}, sent by gstjobs'),
    -- the department's own time limit passed (docs/DEADLINES.md): firm, recipient, deadline,
    -- due_local, case_reference, section, client, owner, basis
    ('deadline-time-bar',
     'Time bar: {deadline} ({case_reference}) was {due_local}',
     E'Dear {recipient},\n\n{deadline} on case {case_reference} ({client}, section {section}) '
     || E'was {due_local}. What the department does under that provision after it is open to '
     || E'challenge as time-barred.{basis}{late}\n\n{firm}, sent by gstjobs'),
    -- the weekly summary, Mondays: firm, recipient, whose ('Your' or 'The firm''s'), count,
    -- from_local, until_local, list (a line a deadline, by due date), part ('' or ' (part 2
    -- of 3)': a long list goes in parts), late
    ('deadlines-ahead',
     'Deadlines in the next 14 days: {count}{part}',
     E'Dear {recipient},\n\n{whose} open deadlines due from {from_local} to {until_local}, '
     || E'{count} in all, by due date{part}:\n\n{list}{late}\n\n{firm}, sent by gstjobs'),
    -- firm, recipient, local_date, anomalies
    ('analytics-anomaly',
     'Unusual figures for {firm} on {local_date}',
     E'Dear {recipient},\n\nThe daily snapshot of {local_date} differs from the last 28 days '
     || E'by more than 3 standard deviations:\n{anomalies}\n\nsent by gstjobs'),
    -- problem, advice, detected_local
    ('health-alert',
     'gstjobs health: {problem}',
     E'gstjobs found a problem at {detected_local}:\n\n{problem}\n\nWhat to do: {advice}\n');

-- Rendering is compiled from the view above into two SQL functions, gstjobs.render_subject
-- and gstjobs.render_body (kind, vars): a CASE over the kinds whose branches concatenate the
-- template's text with the values, 'Deadline ' || coalesce(vars ->> 'when', '') || ...
-- Simple enough for the planner to inline, they render in the job's own statement with no
-- call per notification. A kind without a template renders NULL, and the NOT NULL subject
-- makes the insert fail loudly.
DO $compile$
DECLARE
    part text;
    branches text;
BEGIN
    FOREACH part IN ARRAY ARRAY['subject', 'body'] LOOP
        SELECT string_agg(format('WHEN %L THEN %s', t.kind, compiled.expression), ' ' ORDER BY t.kind)
        INTO branches
        FROM (SELECT kind, CASE part WHEN 'subject' THEN subject ELSE body END AS text
              FROM gstjobs.templates) AS t
        CROSS JOIN LATERAL (
            -- the text split at its {name} placeholders: literal, value, literal, ...
            SELECT string_agg(
                       quote_literal(piece.literal)
                       || CASE WHEN piece.name IS NOT NULL
                               THEN format(' || coalesce(vars ->> %L, %L) || ', piece.name, '') ELSE '' END,
                       '' ORDER BY piece.n) AS expression
            FROM (
                SELECT literals.n, literals.literal, (names.match)[1] AS name
                FROM unnest(regexp_split_to_array(t.text, '\{[a-z_]+\}'))
                         WITH ORDINALITY AS literals (literal, n)
                LEFT JOIN (SELECT match, row_number() OVER () AS n
                           FROM regexp_matches(t.text, '\{([a-z_]+)\}', 'g') AS match) AS names
                       ON names.n = literals.n
            ) AS piece
        ) AS compiled;
        EXECUTE format(
            'CREATE OR REPLACE FUNCTION gstjobs.render_%s(kind text, vars jsonb) RETURNS text
                 LANGUAGE sql IMMUTABLE PARALLEL SAFE
                 RETURN CASE kind %s END',
            part, branches);
        EXECUTE format(
            'COMMENT ON FUNCTION gstjobs.render_%s(text, jsonb) IS %L', part,
            format('the %s of a notification of this kind, its {name} placeholders filled from vars (compiled from gstjobs.templates)', part));
    END LOOP;
END
$compile$;

-- A composed subject or body always fits its column (notifications: subject 300, body
-- 20,000): a firm's long title, reference or forum is cut at a word boundary with an
-- ellipsis, never a constraint error that would stop the job. A subject is one line: control
-- characters and line separators become spaces (the firm's columns refuse them already: this
-- is for rows stored before revision 0005); a body keeps its line breaks and tabs.
-- No SET clause: it is called for every message composed, from functions whose search_path
-- is fixed, and a SET would save and restore a setting each time.
CREATE OR REPLACE FUNCTION gstjobs.fit(text text, max_length integer, one_line boolean) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    SELECT CASE
        WHEN length(clean) <= max_length THEN clean
        -- the longest prefix that ends a word, if it keeps at least half; else a hard cut
        ELSE coalesce(
                 (SELECT cut FROM (SELECT substring(left(clean, max_length - 1) FROM '^(.*\S)\s') AS cut) AS w
                  WHERE length(cut) >= max_length / 2),
                 left(clean, max_length - 1)) || '…'
    END
    FROM (SELECT CASE WHEN one_line
                      THEN btrim(regexp_replace(text, '[\x01-\x1f\x7f-\x9f\u2028\u2029]+', ' ', 'g'))
                      ELSE regexp_replace(text, '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+', ' ', 'g')
                 END AS clean) AS c
);
COMMENT ON FUNCTION gstjobs.fit(text, integer, boolean) IS
    'text cut to max_length at a word boundary with an ellipsis, its control characters replaced (one_line: line breaks too)';

CREATE OR REPLACE FUNCTION gstjobs.format_local(instant timestamptz, zone text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    session_zone constant text := current_setting('timezone');
    formatted text;
BEGIN
    -- to_char's TZ is the session zone's abbreviation at that instant (IST, GMT, BST): switch
    -- the zone for this one call.
    PERFORM set_config('timezone', zone, true);
    formatted := to_char(instant, 'Dy DD Mon YYYY, HH24:MI TZ');
    PERFORM set_config('timezone', session_zone, true);
    RETURN formatted;
END
$$;
COMMENT ON FUNCTION gstjobs.format_local(timestamptz, text) IS
    'an instant as a firm reads it: format_local(''2026-12-08 05:00Z'', ''Asia/Kolkata'') = ''Tue 08 Dec 2026, 10:30 IST''';

-- Whether a kind may go by WhatsApp: a WhatsApp message is one of the provider's templates
-- with a few one-line parameters, and a list is not (the weekly summary goes by email or in the
-- digest). The one home of that fact: the jobs' writing of notifications, the choices view
-- and the setting of a choice ask here. A SQL-standard body, parsed once at creation, so that
-- the planner inlines it with no caller's search_path to resolve it by.
CREATE OR REPLACE FUNCTION gstjobs.goes_by_whatsapp(kind text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind <> 'deadlines-ahead';
COMMENT ON FUNCTION gstjobs.goes_by_whatsapp(text) IS
    'whether a kind of notification may go by WhatsApp (a list, the weekly summary, may not)';

-- WhatsApp consent (litigation.whatsapp_consents, docs/DELIVERY.md): a member may be sent
-- WhatsApp messages while their latest word is an opt-in. Inlined into every notifying
-- statement (plpy/common.py NOTIFY).
CREATE OR REPLACE FUNCTION gstjobs.whatsapp_consented(consent litigation.whatsapp_consents)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN consent.opted_in_at IS NOT NULL
           AND (consent.opted_out_at IS NULL OR consent.opted_out_at < consent.opted_in_at);
COMMENT ON FUNCTION gstjobs.whatsapp_consented(litigation.whatsapp_consents) IS
    'true while a member''s latest word on WhatsApp is an opt-in';

-- Called by the consent table's trigger as the firm application records a member's word: while
-- it is not an opt-in, what waits for the member on WhatsApp ends suppressed, never sent, and
-- goes by email instead where the member's choice for its kind says so (email_instead, the
-- default) or it cannot be switched off (urgency 0 or 1): the same words, due when the
-- WhatsApp message was, once (its dedupe key is the email's the job would have written). A
-- message a dispatch run has already claimed is under way and goes (at most the few in a
-- sender's hands). Owner only: the trigger runs it for the row's own firm and member.
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
        RETURNING n.tenant_id, n.member_id, n.kind, n.subject, n.body, n.template, n.urgency,
                  n.dedupe_key, n.run_id, n.next_attempt_at),
    instead AS (
        INSERT INTO gstjobs.notifications
            (tenant_id, kind, channel, recipient, member_id, subject, body, template, urgency,
             dedupe_key, run_id, next_attempt_at)
        SELECT s.tenant_id, s.kind, 'email', m.email, s.member_id, s.subject, s.body, s.template,
               s.urgency, regexp_replace(s.dedupe_key, ':whatsapp$', ':email'), s.run_id,
               s.next_attempt_at
        FROM suppressed AS s
        JOIN litigation.members AS m ON m.tenant_id = s.tenant_id AND m.id = s.member_id
        LEFT JOIN litigation.notification_preferences AS own
            ON own.tenant_id = s.tenant_id AND own.member_id = s.member_id AND own.kind = s.kind
        LEFT JOIN litigation.notification_defaults AS firms
            ON firms.tenant_id = s.tenant_id AND firms.kind = s.kind
        WHERE m.email IS NOT NULL AND m.active
          AND (coalesce(own.email_instead, firms.email_instead, true) OR s.urgency <= 1)
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING 1)
    SELECT count(*)::integer FROM suppressed;
END;
COMMENT ON FUNCTION gstjobs.honour_consent(bigint, bigint) IS
    'suppresses what waits for a member on WhatsApp while their latest word is not an opt-in, writing email instead where their choice says so; returns how many were suppressed';

RESET ROLE;
GRANT SELECT ON gstjobs.templates TO gstjobs_operator;
