-- Statutory deadlines from case events (docs/DEADLINES.md): counting as the law counts, the
-- firm's holiday calendars, the safe date, and recomputation when an event is corrected.
-- Re-applied on every upgrade to head. The triggers of migration 0002 call these.

SET ROLE gstjobs_owner;

CREATE OR REPLACE FUNCTION gstjobs.legal_date(day date) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN to_char(day, 'FMDD Mon YYYY');
COMMENT ON FUNCTION gstjobs.legal_date(date) IS 'a date as an order writes it: 31 Aug 2026';

-- Raised whenever the counting below changes what it gives: the end of this file counts
-- the open deadlines of an older counting again.
CREATE OR REPLACE FUNCTION gstjobs.deadline_counting() RETURNS integer
    LANGUAGE sql IMMUTABLE
    RETURN 3;
COMMENT ON FUNCTION gstjobs.deadline_counting() IS 'the version of the deadline counting, kept in deadlines.computation->''counting''';

CREATE OR REPLACE FUNCTION gstjobs.period_end(start date, period integer, unit text) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    -- The day of the event is excluded: 30 days from 1 Sep end on 1 Oct. A calendar month
    -- ends on the same day of the month, or the month's last day when it has none:
    -- 31 Aug + 3 months = 30 Nov; 30 Nov 2023 + 3 months = 29 Feb 2024.
    RETURN CASE unit
        WHEN 'days' THEN start + period
        WHEN 'months' THEN (start + make_interval(months => period))::date
    END;
COMMENT ON FUNCTION gstjobs.period_end(date, integer, text) IS 'the last day of a period of days or calendar months from a date, that date excluded';

-- A closed day is a Sunday, or a day the firm's calendar for the forum closes (a holiday, or a
-- weekday it names): with no calendar only Sundays close, so that a forum sitting on Saturdays
-- never gets a last day two days late (General Clauses Act s. 10 moves a last day only past
-- days the office is closed).
CREATE OR REPLACE FUNCTION gstjobs.open_day(
    tenant_id bigint, forum text, day date, direction integer,
    OUT open_on date, OUT skipped jsonb, OUT calendar text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chosen litigation.holiday_calendars;
    closed_because text;
BEGIN
    IF direction NOT IN (1, -1) THEN
        RAISE EXCEPTION 'direction must be 1 (forward) or -1 (back), not %', direction
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the firm's calendar for this forum, else its calendar for every forum
    SELECT * INTO chosen FROM litigation.holiday_calendars AS c
    WHERE c.tenant_id = open_day.tenant_id
      AND (c.forum = open_day.forum OR c.forum IS NULL)
    ORDER BY c.forum NULLS LAST
    LIMIT 1;
    calendar := CASE WHEN chosen.id IS NULL THEN 'none recorded: Sundays closed'
                     ELSE format('%s (calendar %s)', chosen.name, chosen.id) END;
    open_on := day;
    skipped := '[]';
    -- a chain of closed days (a Sunday, then a holiday) is walked day by day
    FOR step IN 1..366 LOOP
        closed_because := NULL;
        IF extract(isodow FROM open_on)::smallint = ANY (coalesce(chosen.closed_weekdays, '{7}')) THEN
            closed_because := to_char(open_on, 'FMDay');
        ELSE
            SELECT h.name INTO closed_because FROM litigation.holidays AS h
            WHERE h.tenant_id = open_day.tenant_id AND h.calendar_id = chosen.id
              AND h.holiday_on = open_on;
        END IF;
        IF closed_because IS NULL THEN
            RETURN;
        END IF;
        skipped := skipped || jsonb_build_object('on', open_on, 'closed', closed_because);
        open_on := open_on + direction;
    END LOOP;
    RAISE EXCEPTION 'calendar % is closed for more than a year from %', calendar, day
        USING ERRCODE = 'data_exception';
END
$$;
COMMENT ON FUNCTION gstjobs.open_day(bigint, text, date, integer) IS
    'the nearest day from `day` (forward: 1, back: -1) on which the firm''s calendar for the forum is open, and the closed days passed over';

CREATE OR REPLACE FUNCTION gstjobs.deadline_dates(
    rule gstjobs.deadline_rules, event litigation.case_events,
    OUT due_on date, OUT statutory_on date, OUT condonable_until date, OUT computation jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    start date;
    start_text text;
    period integer := rule.period;
    period_text text;
    last_day date;
    days_reading date;
    earlier gstjobs.deadline_rules;
    earlier_last_day date;
    earlier_computation jsonb;
    notified gstjobs.notified_dates;
    counted_last_day date;
    kind_label text;
    closed_days jsonb;
    safe_moved_back jsonb;
    calendar text;
    summary text;
BEGIN
    kind_label := (SELECT k.label FROM gstjobs.case_event_kinds AS k WHERE k.kind = event.kind);
    IF rule.counted_from = 'event' THEN
        start := event.event_on;
        start_text := kind_label || ' ' || gstjobs.legal_date(start);
    ELSIF rule.counted_from = 'rule' THEN
        -- counted back from another rule's last day for the same event (73(2): "at least three
        -- months prior to the time limit specified in sub-section (10)"), as notified
        SELECT * INTO earlier FROM gstjobs.deadline_rules AS r WHERE r.key = rule.counted_back_from;
        IF earlier.counted_from = 'rule' THEN
            computation := jsonb_build_object('problem', format('rule %s is itself counted back from another rule: one step only', earlier.key));
            RETURN;
        END IF;
        SELECT d.statutory_on, d.computation INTO earlier_last_day, earlier_computation
        FROM gstjobs.deadline_dates(earlier, event) AS d;
        IF earlier_last_day IS NULL THEN
            computation := earlier_computation;
            RETURN;
        END IF;
        start := earlier_last_day;
        start_text := format('%s %s before the %s%s, %s%s', rule.period, rule.unit,
                             lower(left(earlier.name, 1)) || substr(earlier.name, 2),
                             coalesce(' for ' || event.financial_year, ''), gstjobs.legal_date(start),
                             coalesce(' (' || (earlier_computation -> 'notified' ->> 'notification') || ')', ''));
    ELSIF event.financial_year IS NULL THEN
        computation := jsonb_build_object('problem', 'the event has no financial year: the limitation counts from that year''s annual-return due date');
        RETURN;
    ELSE
        SELECT a.due_on INTO start FROM gstjobs.annual_return_due_dates AS a
        WHERE a.financial_year = event.financial_year;
        IF start IS NULL THEN
            computation := jsonb_build_object('problem', format('no annual-return due date recorded for financial year %s', event.financial_year));
            RETURN;
        END IF;
        start_text := format('annual return for %s due %s', event.financial_year, gstjobs.legal_date(start));
    END IF;

    IF rule.notice_may_set AND event.notice_period_days IS NOT NULL THEN
        period := least(event.notice_period_days, coalesce(rule.period_cap, event.notice_period_days));
        period_text := format('%s days (the notice gave %s%s)', period, event.notice_period_days,
                              CASE WHEN period < event.notice_period_days
                                   THEN format(', at most %s', rule.period_cap) ELSE '' END);
    ELSE
        period_text := format('%s %s', period, rule.unit);
    END IF;
    IF rule.counted_from = 'rule' THEN
        -- the latest day from which the period still ends by the other rule's last day: the
        -- reading least favourable to a time bar, so the firm never claims one a court could
        -- reject (30 Apr - 3 months: 31 Jan, as 31 Jan + 3 months = 30 Apr)
        last_day := gstjobs.period_end(start, -period, rule.unit);
        WHILE gstjobs.period_end(last_day + 1, period, rule.unit) <= start LOOP
            last_day := last_day + 1;
        END LOOP;
    ELSE
        last_day := gstjobs.period_end(start, period, rule.unit);
    END IF;

    -- the safe reading: where a period in months could also be read as 30 days a month, the
    -- earlier of the two (a firm's own act only)
    IF rule.binds = 'taxpayer' AND rule.unit = 'months' THEN
        days_reading := start + 30 * period;
    END IF;
    due_on := least(last_day, days_reading);

    -- a date the Government notified for this class of events (a transitional date, an
    -- extension under section 168A) applies where later: the latest that covers the event
    counted_last_day := last_day;
    SELECT * INTO notified FROM gstjobs.notified_dates AS n
    WHERE n.rule_key = rule.key AND n.active AND n.last_day > counted_last_day
      AND (n.for_events_from IS NULL OR event.event_on >= n.for_events_from)
      AND (n.for_events_before IS NULL OR event.event_on < n.for_events_before)
      AND (n.financial_year IS NULL OR n.financial_year = event.financial_year)
    ORDER BY n.last_day DESC, n.notified_on DESC, n.id
    LIMIT 1;
    IF notified.id IS NOT NULL THEN
        last_day := notified.last_day;
        due_on := notified.last_day;
    END IF;

    IF rule.rolls_forward THEN
        SELECT r.open_on, r.skipped, r.calendar INTO statutory_on, closed_days, calendar
        FROM gstjobs.open_day(event.tenant_id, rule.forum, last_day, 1) AS r;
        -- the safe date is a day the firm can act on: moved back over closed days, so never
        -- later than the statutory last day
        IF rule.binds = 'taxpayer' THEN
            SELECT r.open_on, nullif(r.skipped, '[]') INTO due_on, safe_moved_back
            FROM gstjobs.open_day(event.tenant_id, rule.forum, due_on, -1) AS r;
        END IF;
    ELSE
        statutory_on := last_day;
    END IF;
    -- condonation runs from the last day of the period itself and is never rolled
    IF rule.extension IS NOT NULL THEN
        condonable_until := gstjobs.period_end(last_day, rule.extension, rule.extension_unit);
    END IF;

    summary := format('%s, section %s: %s: ', rule.name, rule.section, start_text)
        || CASE WHEN rule.binds = 'taxpayer'
                THEN format('safe date %s, statutory %s', gstjobs.legal_date(due_on), gstjobs.legal_date(statutory_on))
                     || coalesce(', condonable to ' || gstjobs.legal_date(condonable_until), '')
                ELSE format('last date %s', gstjobs.legal_date(statutory_on))
                     || coalesce(', extendable to ' || gstjobs.legal_date(condonable_until), '') END
        || CASE WHEN notified.id IS NOT NULL
                THEN format(' (the date notified by %s of %s)', notified.notification, gstjobs.legal_date(notified.notified_on))
                ELSE '' END
        -- the act the limit governs is the event itself: in time or not is known now
        || CASE WHEN rule.limits_the_event AND event.event_on > statutory_on
                THEN format('; the %s on %s came after it: open to challenge as time-barred', kind_label, gstjobs.legal_date(event.event_on))
                WHEN rule.limits_the_event
                THEN format('; the %s on %s was within it', kind_label, gstjobs.legal_date(event.event_on))
                ELSE '' END;
    computation := jsonb_strip_nulls(jsonb_build_object(
        'counting', gstjobs.deadline_counting(),
        'rule', rule.key, 'section', rule.section, 'source', rule.source,
        'rule_verified_on', rule.verified_on,
        'counted_from', jsonb_build_object('what', start_text, 'on', start),
        'period', period_text,
        'period_end', gstjobs.period_end(start, period, rule.unit),
        'days_reading', CASE WHEN days_reading IS NOT NULL
                             THEN jsonb_build_object('days', 30 * period, 'end', days_reading) END,
        'counted_back_from', CASE WHEN earlier_last_day IS NOT NULL THEN jsonb_build_object(
                             'rule', earlier.key, 'last_day', earlier_last_day,
                             'notified', earlier_computation -> 'notified') END,
        'notified', CASE WHEN notified.id IS NOT NULL THEN jsonb_build_object(
                        'id', notified.id, 'notification', notified.notification,
                        'notified_on', notified.notified_on, 'section', notified.section,
                        'last_day', notified.last_day, 'source', notified.source) END,
        'event_in_time', CASE WHEN rule.limits_the_event THEN event.event_on <= statutory_on END,
        'calendar', calendar,
        'closed_days_skipped', closed_days,
        'safe_moved_back', safe_moved_back,
        'safe', due_on, 'statutory', statutory_on, 'condonable_until', condonable_until,
        'summary', summary));
END
$$;
COMMENT ON FUNCTION gstjobs.deadline_dates(gstjobs.deadline_rules, litigation.case_events) IS
    'the dates one rule gives for one event, and the arithmetic; computation->>''problem'' when it cannot be computed';

-- Whether the computing still owns a deadline: computed, untouched by a person, and open (or
-- met in time by the very event it limits, which the computing decided, not a person).
-- (A quoted body: a downgrade may drop the column it reads, and the older version's
-- re-apply then drops the function.)
CREATE OR REPLACE FUNCTION gstjobs.recomputable(origin text, status text, rule_key text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT origin = 'computed'
           AND (status = 'open'
                OR (status = 'met' AND EXISTS (SELECT FROM gstjobs.deadline_rules AS r
                                               WHERE r.key = rule_key AND r.limits_the_event)))
$$;
COMMENT ON FUNCTION gstjobs.recomputable(text, text, text) IS
    'whether a recomputation may change or remove a deadline (docs/DEADLINES.md, "what is never overwritten")';

CREATE OR REPLACE FUNCTION gstjobs.compute_event_deadlines(tenant_id bigint, event_id bigint) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event litigation.case_events;
    kind gstjobs.case_event_kinds;
    rule gstjobs.deadline_rules;
    dates record;
    owner bigint;
    problems jsonb := '[]';
    written integer := 0;
    n integer;
BEGIN
    SELECT * INTO event FROM litigation.case_events AS e
    WHERE e.tenant_id = compute_event_deadlines.tenant_id AND e.id = compute_event_deadlines.event_id;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    SELECT c.owner_id INTO owner FROM litigation.cases AS c
    WHERE c.tenant_id = event.tenant_id AND c.id = event.case_id;
    -- our own date changes are not a person's (litigation.note_hand_change)
    PERFORM set_config('gstjobs.computing_deadlines', 'on', true);

    -- a notice under a section that does not reach its financial year is recorded (the firm
    -- must still answer it, and the notice's reach is its argument), with a warning
    SELECT * INTO kind FROM gstjobs.case_event_kinds AS k WHERE k.kind = event.kind;
    IF event.financial_year > kind.last_financial_year OR event.financial_year < kind.first_financial_year THEN
        problems := problems || jsonb_build_object(
            'warning', format('%s; this %s is for financial year %s', kind.applies_because, kind.label,
                              event.financial_year));
    END IF;

    FOR rule IN SELECT * FROM gstjobs.deadline_rules AS r WHERE r.trigger_event = event.kind AND r.active
                ORDER BY r.key LOOP
        dates := gstjobs.deadline_dates(rule, event);
        IF dates.due_on IS NULL THEN
            problems := problems || jsonb_build_object('rule', rule.key, 'problem', dates.computation ->> 'problem');
            CONTINUE;
        END IF;
        -- a deadline a person set, changed, or marked met, missed or waived stays as it is
        -- a limit on the event's own act (a notice's issue) met in time needs no watching; one
        -- passed stays open and is alerted once as a time bar. Both follow the event's corrections.
        INSERT INTO litigation.deadlines AS d
            (tenant_id, case_id, kind, due_on, owner_id, origin, event_id, rule_key,
             statutory_on, condonable_until, computation, status)
        VALUES (event.tenant_id, event.case_id, rule.name, dates.due_on, owner, 'computed', event.id,
                rule.key, dates.statutory_on, dates.condonable_until, dates.computation,
                CASE WHEN (dates.computation -> 'event_in_time')::boolean THEN 'met' ELSE 'open' END)
        ON CONFLICT ON CONSTRAINT deadlines_one_per_event_and_rule DO UPDATE
        SET case_id = excluded.case_id, kind = excluded.kind, due_on = excluded.due_on,
            statutory_on = excluded.statutory_on, condonable_until = excluded.condonable_until,
            computation = excluded.computation, status = excluded.status
        WHERE gstjobs.recomputable(d.origin, d.status, d.rule_key)
          AND (d.case_id, d.kind, d.due_on, d.statutory_on, d.condonable_until, d.computation, d.status)
              IS DISTINCT FROM (excluded.case_id, excluded.kind, excluded.due_on, excluded.statutory_on,
                                excluded.condonable_until, excluded.computation, excluded.status);
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END LOOP;

    -- deadlines of rules this event no longer gives (its kind changed, a rule was retired, a
    -- date can no longer be computed) go, unless a person has taken them over
    DELETE FROM litigation.deadlines AS d
    WHERE d.tenant_id = event.tenant_id AND d.event_id = event.id
      AND gstjobs.recomputable(d.origin, d.status, d.rule_key)
      AND NOT EXISTS (SELECT FROM gstjobs.deadline_rules AS r
                      WHERE r.key = d.rule_key AND r.trigger_event = event.kind AND r.active
                        AND NOT problems @> jsonb_build_array(jsonb_build_object('rule', r.key)));
    GET DIAGNOSTICS n = ROW_COUNT;
    written := written + n;

    UPDATE litigation.case_events AS e SET unresolved = problems
    WHERE e.tenant_id = event.tenant_id AND e.id = event.id AND e.unresolved IS DISTINCT FROM problems;
    PERFORM set_config('gstjobs.computing_deadlines', '', true);
    RETURN written;
END
$$;
COMMENT ON FUNCTION gstjobs.compute_event_deadlines(bigint, bigint) IS
    'computes (again) the deadlines an event gives; returns how many deadlines were written or removed';

CREATE OR REPLACE FUNCTION gstjobs.forget_event_deadlines(tenant_id bigint, event_id bigint) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- an event removed: its untouched deadlines go; the others stay, no longer linked
    WITH gone AS (
        DELETE FROM litigation.deadlines AS d
        WHERE d.tenant_id = forget_event_deadlines.tenant_id
          AND d.event_id = forget_event_deadlines.event_id
          AND gstjobs.recomputable(d.origin, d.status, d.rule_key)
        RETURNING 1)
    SELECT count(*)::integer FROM gone;
END;

CREATE OR REPLACE FUNCTION gstjobs.recompute_deadlines(tenant_id bigint DEFAULT NULL, event_kinds text[] DEFAULT NULL,
                                            financial_year text DEFAULT NULL) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- every event of a firm (a calendar changed), of some kinds (a rule changed) or of a
    -- financial year (its annual-return due date changed); NULL: any
    SELECT coalesce(sum(gstjobs.compute_event_deadlines(e.tenant_id, e.id)), 0)::integer
    FROM litigation.case_events AS e
    WHERE (recompute_deadlines.tenant_id IS NULL OR e.tenant_id = recompute_deadlines.tenant_id)
      AND (recompute_deadlines.event_kinds IS NULL OR e.kind = ANY (recompute_deadlines.event_kinds))
      AND (recompute_deadlines.financial_year IS NULL OR e.financial_year = recompute_deadlines.financial_year);
END;
COMMENT ON FUNCTION gstjobs.recompute_deadlines(bigint, text[], text) IS
    'computes again the deadlines of the matching events; returns how many deadlines changed';

-- ------------------------------------------------------------------ for operators ----------
-- The columns a JSON object names, checked against a table's (the names are then safe to
-- write into a statement): a bad name is refused before anything is written.
CREATE OR REPLACE FUNCTION gstjobs.fields_of(payload jsonb, tab regclass, leave_out text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
    fields text;
BEGIN
    SELECT string_agg(quote_literal(left(field, 60)), ', ') INTO unknown
    FROM jsonb_object_keys(payload) AS field
    WHERE field NOT IN (SELECT attname FROM pg_attribute
                        WHERE attrelid = tab AND attnum > 0 AND NOT attisdropped);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown field(s) %', unknown
            USING ERRCODE = 'invalid_parameter_value', HINT = format('fields are the columns of %s', tab);
    END IF;
    SELECT string_agg(quote_ident(field), ', ') INTO fields
    FROM jsonb_object_keys(payload) AS field WHERE field IS DISTINCT FROM leave_out;
    IF fields IS NULL THEN
        RAISE EXCEPTION 'nothing to write' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN fields;
END
$$;
COMMENT ON FUNCTION gstjobs.fields_of(jsonb, regclass, text) IS
    'the quoted column names a JSON object gives (less one left out); refuses a name the table does not have';

CREATE OR REPLACE FUNCTION gstjobs.define_deadline_rule(rule jsonb, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old gstjobs.deadline_rules;
    new gstjobs.deadline_rules;
    fields text;
    recomputed integer;
BEGIN
    IF jsonb_typeof(rule) IS DISTINCT FROM 'object' OR NOT rule ? 'key' THEN
        RAISE EXCEPTION 'a rule is a JSON object with at least its "key"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- only the fields given are written: a new rule gets the defaults for the rest, a
    -- changed one keeps them
    fields := gstjobs.fields_of(rule, 'gstjobs.deadline_rules');
    SELECT * INTO old FROM gstjobs.deadline_rules AS r WHERE r.key = rule ->> 'key';
    IF old.key IS NULL THEN
        EXECUTE format('INSERT INTO gstjobs.deadline_rules (%s) SELECT %s
                        FROM jsonb_populate_record(NULL::gstjobs.deadline_rules, $1)', fields, fields)
            USING rule;
    ELSE
        EXECUTE format('UPDATE gstjobs.deadline_rules SET (%s) = (SELECT %s
                        FROM jsonb_populate_record(NULL::gstjobs.deadline_rules, $1)) WHERE key = $2',
                       fields, fields)
            USING rule, old.key;
    END IF;
    SELECT * INTO new FROM gstjobs.deadline_rules AS r WHERE r.key = rule ->> 'key';
    recomputed := gstjobs.recompute_deadlines(
        event_kinds => ARRAY[new.trigger_event, old.trigger_event]);
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('deadline-rule.' || CASE WHEN old.key IS NULL THEN 'add' ELSE 'change' END,
            jsonb_build_object('key', new.key, 'old', to_jsonb(old), 'new', to_jsonb(new),
                               'deadlines_recomputed', recomputed), reason);
    RETURN to_jsonb(new) || jsonb_build_object('deadlines_recomputed', recomputed);
END
$$;
COMMENT ON FUNCTION gstjobs.define_deadline_rule(jsonb, text) IS
    'adds or changes a deadline rule (fields as gstjobs.deadline_rules), recomputes the deadlines it gives; audited';

CREATE OR REPLACE FUNCTION gstjobs.define_notified_date(notified jsonb, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old gstjobs.notified_dates;
    new gstjobs.notified_dates;
    fields text;
    recomputed integer;
BEGIN
    IF jsonb_typeof(notified) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'a notified date is a JSON object: its "id" to change one, none to add one'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the fields given, the id aside
    fields := gstjobs.fields_of(notified, 'gstjobs.notified_dates', 'id');
    IF notified ? 'rule_key' AND NOT EXISTS (SELECT FROM gstjobs.deadline_rules AS r WHERE r.key = notified ->> 'rule_key') THEN
        RAISE EXCEPTION 'unknown rule %', quote_literal(left(notified ->> 'rule_key', 60))
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs rules list shows the rules';
    END IF;
    IF notified ? 'id' THEN
        SELECT * INTO old FROM gstjobs.notified_dates AS n WHERE n.id = (notified ->> 'id')::bigint;
        IF old.id IS NULL THEN
            RAISE EXCEPTION 'no notified date %', notified ->> 'id' USING ERRCODE = 'undefined_object';
        END IF;
    END IF;
    BEGIN
        IF old.id IS NOT NULL THEN
            EXECUTE format('UPDATE gstjobs.notified_dates SET (%s) = (SELECT %s
                            FROM jsonb_populate_record(NULL::gstjobs.notified_dates, $1)) WHERE id = $2
                            RETURNING *', fields, fields)
                INTO new USING notified, old.id;
        ELSE
            EXECUTE format('INSERT INTO gstjobs.notified_dates (%s) SELECT %s
                            FROM jsonb_populate_record(NULL::gstjobs.notified_dates, $1) RETURNING *', fields, fields)
                INTO new USING notified;
        END IF;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'rule % already has % for these events',
                        coalesce(notified ->> 'rule_key', old.rule_key), coalesce(notified ->> 'notification', old.notification)
            USING ERRCODE = 'duplicate_object',
                  HINT = 'gstjobs rules show shows it; change it by its id';
    END;
    -- the events of the rules it changes, and of those counted back from them
    recomputed := gstjobs.recompute_deadlines(event_kinds => ARRAY(
        SELECT r.trigger_event FROM gstjobs.deadline_rules AS r
        WHERE r.key IN (old.rule_key, new.rule_key) OR r.counted_back_from IN (old.rule_key, new.rule_key)));
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('notified-date.' || CASE WHEN old.id IS NULL THEN 'add' ELSE 'change' END,
            jsonb_build_object('id', new.id, 'old', to_jsonb(old), 'new', to_jsonb(new),
                               'deadlines_recomputed', recomputed), reason);
    RETURN to_jsonb(new) || jsonb_build_object('deadlines_recomputed', recomputed);
END
$$;
COMMENT ON FUNCTION gstjobs.define_notified_date(jsonb, text) IS
    'adds a notified date (no id) or changes one (its id; "active": false retires it) with its citation; the deadlines it covers are recomputed; audited';

CREATE OR REPLACE FUNCTION gstjobs.set_annual_return_due_date(
    financial_year text, due_on date, source text, verified_on date DEFAULT NULL, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old gstjobs.annual_return_due_dates;
    recomputed integer;
BEGIN
    SELECT * INTO old FROM gstjobs.annual_return_due_dates AS a
    WHERE a.financial_year = set_annual_return_due_date.financial_year;
    INSERT INTO gstjobs.annual_return_due_dates AS a (financial_year, due_on, source, verified_on)
    VALUES (financial_year, due_on, source, verified_on)
    ON CONFLICT ON CONSTRAINT annual_return_due_dates_pkey
    DO UPDATE SET due_on = excluded.due_on, source = excluded.source, verified_on = excluded.verified_on;
    recomputed := gstjobs.recompute_deadlines(financial_year => set_annual_return_due_date.financial_year);
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('annual-return-due.set', jsonb_build_object(
                'financial_year', financial_year, 'old', old.due_on, 'new', due_on,
                'deadlines_recomputed', recomputed), reason);
    RETURN jsonb_build_object('financial_year', financial_year, 'due_on', due_on,
                              'deadlines_recomputed', recomputed);
END
$$;
COMMENT ON FUNCTION gstjobs.set_annual_return_due_date(text, date, text, date, text) IS
    'records a financial year''s annual-return due date, recomputes the limitation dates counted from it; audited';

-- ------------------------------------------------------------------ events and calendars, by hand
-- An operator (the firm's counsel, or support acting for it: `gstjobs events`, `gstjobs
-- calendar`) records, corrects and removes a firm's events and holidays as the firm
-- application would, through these audited functions; the triggers compute as for any write.

-- The case, or a refusal naming what was asked for.
CREATE OR REPLACE FUNCTION gstjobs.known_case(tenant_id bigint, case_id bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM litigation.cases AS c
                   WHERE c.tenant_id = known_case.tenant_id AND c.id = known_case.case_id) THEN
        RAISE EXCEPTION 'firm % has no case %', tenant_id, case_id
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs firm list shows the firms';
    END IF;
    RETURN case_id;
END
$$;

-- An event and what it gave: its deadlines and anything unresolved.
CREATE OR REPLACE FUNCTION gstjobs.event_outcome(tenant_id bigint, event_id bigint) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT to_jsonb(e) || jsonb_build_object('deadlines', coalesce(
        (SELECT jsonb_agg(jsonb_build_object('id', d.id, 'rule', d.rule_key, 'safe_date', d.due_on,
                                             'last_day', d.statutory_on, 'condonable_until', d.condonable_until,
                                             'status', d.status, 'origin', d.origin)
                          ORDER BY d.due_on, d.rule_key)
         FROM litigation.deadlines AS d WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id), '[]'))
    FROM litigation.case_events AS e
    WHERE e.tenant_id = event_outcome.tenant_id AND e.id = event_outcome.event_id);

CREATE OR REPLACE FUNCTION gstjobs.record_event(
    tenant_id bigint, case_id bigint, kind text, event_on date, document_ref text DEFAULT NULL,
    notice_period_days integer DEFAULT NULL, financial_year text DEFAULT NULL, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event litigation.case_events;
BEGIN
    PERFORM gstjobs.known_case(tenant_id, case_id);
    IF NOT EXISTS (SELECT FROM gstjobs.case_event_kinds AS k WHERE k.kind = record_event.kind) THEN
        RAISE EXCEPTION 'unknown event kind %', quote_literal(left(kind, 60))
            USING ERRCODE = 'undefined_object',
                  HINT = (SELECT 'kinds are: ' || string_agg(k.kind, ', ' ORDER BY k.kind) FROM gstjobs.case_event_kinds AS k);
    END IF;
    INSERT INTO litigation.case_events AS e
        (tenant_id, case_id, kind, event_on, document_ref, notice_period_days, financial_year)
    VALUES (tenant_id, case_id, kind, event_on, document_ref, notice_period_days, financial_year)
    RETURNING * INTO event;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('event.add', jsonb_build_object('firm_id', event.tenant_id, 'event', to_jsonb(event)), reason);
    RETURN gstjobs.event_outcome(event.tenant_id, event.id);
END
$$;
COMMENT ON FUNCTION gstjobs.record_event(bigint, bigint, text, date, text, integer, text, text) IS
    'records an event on a firm''s case, as the firm would; its deadlines are computed; audited';

CREATE OR REPLACE FUNCTION gstjobs.correct_event(tenant_id bigint, event_id bigint, changes jsonb, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old litigation.case_events;
    new litigation.case_events;
    fields text;
    not_allowed text;
BEGIN
    IF jsonb_typeof(changes) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'the changes are a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    fields := gstjobs.fields_of(changes, 'litigation.case_events');
    -- what the firm itself may correct (migration 0002's column grants)
    SELECT string_agg(quote_literal(field), ', ') INTO not_allowed
    FROM jsonb_object_keys(changes) AS field
    WHERE field NOT IN ('case_id', 'kind', 'event_on', 'document_ref', 'notice_period_days', 'financial_year');
    IF not_allowed IS NOT NULL THEN
        RAISE EXCEPTION 'field(s) % cannot be corrected', not_allowed
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'case_id, kind, event_on, document_ref, notice_period_days, financial_year';
    END IF;
    SELECT * INTO old FROM litigation.case_events AS e
    WHERE e.tenant_id = correct_event.tenant_id AND e.id = correct_event.event_id FOR UPDATE;
    IF old.id IS NULL THEN
        RAISE EXCEPTION 'firm % has no event %', tenant_id, event_id
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs events list --tenant N shows them';
    END IF;
    IF changes ? 'case_id' THEN
        PERFORM gstjobs.known_case(tenant_id, (changes ->> 'case_id')::bigint);
    END IF;
    EXECUTE format('UPDATE litigation.case_events SET (%s) = (SELECT %s
                    FROM jsonb_populate_record(NULL::litigation.case_events, $1))
                    WHERE tenant_id = $2 AND id = $3 RETURNING *', fields, fields)
        INTO new USING changes, tenant_id, event_id;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('event.correct', jsonb_build_object('firm_id', tenant_id, 'event_id', event_id,
                                                'old', to_jsonb(old), 'new', to_jsonb(new)), reason);
    RETURN gstjobs.event_outcome(tenant_id, event_id);
END
$$;
COMMENT ON FUNCTION gstjobs.correct_event(bigint, bigint, jsonb, text) IS
    'corrects an event (its case, kind, date, document, notice period, financial year); its deadlines follow; audited';

CREATE OR REPLACE FUNCTION gstjobs.remove_event(tenant_id bigint, event_id bigint, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    outcome jsonb := gstjobs.event_outcome(tenant_id, event_id);
BEGIN
    IF outcome IS NULL THEN
        RAISE EXCEPTION 'firm % has no event %', tenant_id, event_id
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs events list --tenant N shows them';
    END IF;
    DELETE FROM litigation.case_events AS e
    WHERE e.tenant_id = remove_event.tenant_id AND e.id = remove_event.event_id;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('event.remove', jsonb_build_object('firm_id', tenant_id, 'event_id', event_id, 'old', outcome), reason);
    -- what stays: the deadlines a person had taken over, no longer linked
    RETURN jsonb_build_object('id', event_id, 'removed', true, 'deadlines_kept', (
        SELECT count(*) FROM jsonb_array_elements(outcome -> 'deadlines') AS d (v)
        WHERE EXISTS (SELECT FROM litigation.deadlines AS x
                      WHERE x.tenant_id = remove_event.tenant_id AND x.id = (d.v ->> 'id')::bigint)));
END
$$;
COMMENT ON FUNCTION gstjobs.remove_event(bigint, bigint, text) IS
    'removes an event recorded in error; its untouched deadlines go, those a person took over stay; audited';

-- Holidays for a forum (NULL: the firm's calendar for every forum without its own); the
-- calendar is made when there is none (closed on Sundays). [{"on": "2026-01-26", "name": ...}]
CREATE OR REPLACE FUNCTION gstjobs.add_holidays(tenant_id bigint, forum text, holidays jsonb, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    calendar litigation.holiday_calendars;
    added integer;
BEGIN
    IF NOT EXISTS (SELECT FROM litigation.tenants AS t WHERE t.id = add_holidays.tenant_id) THEN
        RAISE EXCEPTION 'no firm %', tenant_id USING ERRCODE = 'undefined_object', HINT = 'gstjobs firm list shows the firms';
    END IF;
    IF jsonb_typeof(holidays) IS DISTINCT FROM 'array' OR jsonb_array_length(holidays) = 0
       OR EXISTS (SELECT FROM jsonb_array_elements(holidays) AS h (v)
                  WHERE jsonb_typeof(h.v) IS DISTINCT FROM 'object' OR NOT h.v ?& ARRAY['on', 'name']) THEN
        RAISE EXCEPTION 'holidays are a JSON array of {"on": date, "name": text}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO litigation.holiday_calendars AS c (tenant_id, name, forum)
    VALUES (tenant_id, coalesce(replace(forum, '_', ' ') || ' holidays', 'Holidays'), forum)
    ON CONFLICT ON CONSTRAINT holiday_calendars_tenant_id_forum_key DO NOTHING;
    SELECT * INTO calendar FROM litigation.holiday_calendars AS c
    WHERE c.tenant_id = add_holidays.tenant_id AND c.forum IS NOT DISTINCT FROM add_holidays.forum;
    -- one statement: the firm's deadlines are recomputed once
    WITH inserted AS (
        INSERT INTO litigation.holidays AS h (tenant_id, calendar_id, holiday_on, name)
        SELECT tenant_id, calendar.id, (v ->> 'on')::date, v ->> 'name'
        FROM jsonb_array_elements(holidays) AS x (v)
        ON CONFLICT ON CONSTRAINT holidays_tenant_id_calendar_id_holiday_on_key DO NOTHING
        RETURNING 1)
    SELECT count(*) INTO added FROM inserted;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('calendar.add', jsonb_build_object('firm_id', tenant_id, 'calendar_id', calendar.id,
                                               'forum', forum, 'holidays', holidays, 'added', added), reason);
    RETURN jsonb_build_object('calendar_id', calendar.id, 'calendar', calendar.name, 'forum', forum,
                              'added', added, 'already_there', jsonb_array_length(holidays) - added);
END
$$;
COMMENT ON FUNCTION gstjobs.add_holidays(bigint, text, jsonb, text) IS
    'adds holidays to a firm''s calendar for a forum (made if missing); the firm''s deadlines are recomputed; audited';

CREATE OR REPLACE FUNCTION gstjobs.remove_holidays(tenant_id bigint, forum text, days date[], reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_calendar bigint;
    removed integer;
BEGIN
    SELECT c.id INTO found_calendar FROM litigation.holiday_calendars AS c
    WHERE c.tenant_id = remove_holidays.tenant_id AND c.forum IS NOT DISTINCT FROM remove_holidays.forum;
    IF found_calendar IS NULL THEN
        RAISE EXCEPTION 'firm % has no calendar for %', tenant_id, coalesce(forum, 'every forum')
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs calendar list --tenant N shows them';
    END IF;
    WITH gone AS (
        DELETE FROM litigation.holidays AS h
        WHERE h.tenant_id = remove_holidays.tenant_id AND h.calendar_id = found_calendar
          AND h.holiday_on = ANY (days)
        RETURNING 1)
    SELECT count(*) INTO removed FROM gone;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('calendar.remove', jsonb_build_object('firm_id', tenant_id, 'calendar_id', found_calendar,
                                                  'forum', forum, 'days', days, 'removed', removed), reason);
    RETURN jsonb_build_object('calendar_id', found_calendar, 'forum', forum, 'removed', removed);
END
$$;
CREATE OR REPLACE FUNCTION gstjobs.set_closed_weekdays(tenant_id bigint, forum text, weekdays smallint[], reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    calendar litigation.holiday_calendars;
    was smallint[];
BEGIN
    IF NOT EXISTS (SELECT FROM litigation.tenants AS t WHERE t.id = set_closed_weekdays.tenant_id) THEN
        RAISE EXCEPTION 'no firm %', tenant_id USING ERRCODE = 'undefined_object', HINT = 'gstjobs firm list shows the firms';
    END IF;
    SELECT c.closed_weekdays INTO was FROM litigation.holiday_calendars AS c
    WHERE c.tenant_id = set_closed_weekdays.tenant_id AND c.forum IS NOT DISTINCT FROM set_closed_weekdays.forum;
    -- the weekdays in order, once each; the table's CHECK refuses a day outside 1-7 or all seven
    INSERT INTO litigation.holiday_calendars AS c (tenant_id, name, forum, closed_weekdays)
    VALUES (tenant_id, coalesce(replace(forum, '_', ' ') || ' holidays', 'Holidays'), forum,
            ARRAY(SELECT DISTINCT d FROM unnest(weekdays) AS d ORDER BY d))
    ON CONFLICT ON CONSTRAINT holiday_calendars_tenant_id_forum_key
    DO UPDATE SET closed_weekdays = excluded.closed_weekdays
    RETURNING * INTO calendar;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('calendar.weekdays', jsonb_build_object('firm_id', tenant_id, 'calendar_id', calendar.id,
                                                    'forum', forum, 'old', was, 'new', calendar.closed_weekdays), reason);
    RETURN jsonb_build_object('calendar_id', calendar.id, 'calendar', calendar.name, 'forum', forum,
                              'old', was, 'closed_weekdays', calendar.closed_weekdays);
END
$$;
COMMENT ON FUNCTION gstjobs.set_closed_weekdays(bigint, text, smallint[], text) IS
    'sets the weekdays a firm''s forum is closed (1 Monday .. 7 Sunday; the calendar is made if missing); its deadlines are recomputed; audited';

COMMENT ON FUNCTION gstjobs.remove_holidays(bigint, text, date[], text) IS
    'removes holidays from a firm''s calendar for a forum; the firm''s deadlines are recomputed; audited';

-- Open deadlines counted by an earlier version of the counting above are counted again, so an
-- upgrade corrects the dates lawyers see at once (not at the event's next correction). Those
-- a person set, changed or closed stay as they are. After the first upgrade with a new
-- counting this reads the open computed deadlines and changes nothing.
SELECT count(*) AS deadlines_counted_again
FROM (SELECT gstjobs.compute_event_deadlines(e.tenant_id, e.id)
      FROM litigation.case_events AS e
      WHERE EXISTS (SELECT FROM litigation.deadlines AS d
                    WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id
                      AND gstjobs.recomputable(d.origin, d.status, d.rule_key)
                      AND d.computation -> 'counting' IS DISTINCT FROM to_jsonb(gstjobs.deadline_counting()))) AS recounted;

RESET ROLE;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gstjobs.define_deadline_rule(jsonb, text),
                          gstjobs.define_notified_date(jsonb, text),
                          gstjobs.record_event(bigint, bigint, text, date, text, integer, text, text),
                          gstjobs.correct_event(bigint, bigint, jsonb, text),
                          gstjobs.remove_event(bigint, bigint, text),
                          gstjobs.add_holidays(bigint, text, jsonb, text),
                          gstjobs.remove_holidays(bigint, text, date[], text),
                          gstjobs.set_closed_weekdays(bigint, text, smallint[], text),
                          gstjobs.set_annual_return_due_date(text, date, text, date, text)
    TO gstjobs_operator;
