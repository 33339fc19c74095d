-- Deterministic demo, test and benchmark data for a network of GST litigation practices.
-- Read by gstjobs.datagen (`python -m gstjobs.datagen --help`), which sets its parameters:
--   gstjobs_gen.seed, .firms, .tasks, .hearings, .deadlines, .events, .anchor (a timestamptz)
-- Everything is a set-based INSERT ... SELECT over generate_series; "random" choices are
-- hashes of (seed, stream, row number), so the same parameters give the same rows every time.
-- The litigation tables must be empty.

CREATE FUNCTION pg_temp.rnd(stream text, i bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (hashtextextended(stream || ':' || i, current_setting('gstjobs_gen.seed')::bigint)
            & 281474976710655)::float8 / 281474976710656;

CREATE FUNCTION pg_temp.pick(options text[], stream text, i bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN options[1 + floor(pg_temp.rnd(stream, i) * cardinality(options))::int];

CREATE TEMPORARY TABLE gen AS
SELECT current_setting('gstjobs_gen.firms')::int AS firms,
       current_setting('gstjobs_gen.tasks')::int AS tasks,
       current_setting('gstjobs_gen.hearings')::int AS hearings,
       current_setting('gstjobs_gen.deadlines')::int AS deadlines,
       current_setting('gstjobs_gen.anchor')::timestamptz AS anchor,
       coalesce(current_setting('gstjobs_gen.open_share', true)::numeric, 0.30) AS open_share,
       -- people, clients and cases per firm grow with the work the firm has
       greatest(6, least(40, current_setting('gstjobs_gen.tasks')::int / current_setting('gstjobs_gen.firms')::int / 25)) AS members_per_firm,
       greatest(3, current_setting('gstjobs_gen.tasks')::int / current_setting('gstjobs_gen.firms')::int / 20) AS clients_per_firm,
       greatest(4, current_setting('gstjobs_gen.tasks')::int / current_setting('gstjobs_gen.firms')::int / 5) AS cases_per_firm;

DO $$
BEGIN
    IF EXISTS (SELECT FROM litigation.tenants) THEN
        RAISE EXCEPTION 'litigation.tenants is not empty: the generator fills an empty database';
    END IF;
END
$$;

-- Firms: most in India; one in 20 (firm 2 always) an overseas desk in London, with DST.
INSERT INTO litigation.tenants (id, name, timezone, whatsapp_enabled, escalation_delay)
SELECT f,
       pg_temp.pick('{Mehta & Associates,Iyer Tax Chambers,Kapoor Legal LLP,Rao & Reddy Advocates,Banerjee Indirect Tax Practice,Shah Desai & Co,Nair Law Offices,Agarwal GST Consultants,Menon Krishnan Partners,Joshi Kulkarni Legal}', 'firm', f)
           || CASE WHEN f % 20 = 2 THEN ' (London desk)' ELSE ', ' || pg_temp.pick('{Mumbai,Bengaluru,New Delhi,Chennai,Ahmedabad,Kolkata,Hyderabad,Pune}', 'city', f) END
           || CASE WHEN f > 10 THEN ' #' || f ELSE '' END,
       CASE WHEN f % 20 = 2 THEN 'Europe/London' ELSE 'Asia/Kolkata' END,
       f % 3 <> 0,
       interval '24 hours'
FROM gen, generate_series(1, gen.firms) AS f;

-- Members: 1 partner, 1 admin, 2 managers reporting to the partner, associates to a manager.
INSERT INTO litigation.members (tenant_id, id, name, email, phone, role, manager_id, active)
SELECT f, (f - 1) * m + k, person.name,
       CASE WHEN pg_temp.rnd('no-email', (f - 1) * m + k) < 0.04 AND k > 4 THEN NULL
            ELSE lower(replace(person.name, ' ', '.')) || '.' || ((f - 1) * m + k) || '@firm' || f || '.example.in' END,
       CASE WHEN pg_temp.rnd('phone', (f - 1) * m + k) < 0.8
            THEN '+9198' || lpad((floor(pg_temp.rnd('phone-no', (f - 1) * m + k) * 1e8))::bigint::text, 8, '0') END,
       CASE k WHEN 1 THEN 'partner' WHEN 2 THEN 'admin' WHEN 3 THEN 'manager' WHEN 4 THEN 'manager' ELSE 'associate' END,
       CASE WHEN k = 1 THEN NULL WHEN k <= 4 THEN (f - 1) * m + 1 ELSE (f - 1) * m + 3 + k % 2 END,
       true
FROM gen, generate_series(1, gen.firms) AS f, generate_series(1, gen.members_per_firm) AS k,
     LATERAL (SELECT gen.members_per_firm AS m) AS size,
     LATERAL (SELECT pg_temp.pick('{Aarav,Priya,Rohan,Ananya,Vikram,Kavya,Arjun,Meera,Siddharth,Lakshmi,Karthik,Neha,Rahul,Divya,Aditya,Sneha}', 'first', (f - 1) * m + k)
                     || ' ' ||
                     pg_temp.pick('{Sharma,Iyer,Patel,Reddy,Gupta,Nair,Mehta,Rao,Banerjee,Kulkarni,Joshi,Menon,Das,Singh,Pillai,Shah}', 'last', (f - 1) * m + k) AS name) AS person;

-- Every member with a phone opted in to WhatsApp on the firm's onboarding form, a year before.
INSERT INTO litigation.whatsapp_consents (tenant_id, member_id, opted_in_at, opted_in_how)
SELECT m.tenant_id, m.id, gen.anchor - interval '1 year', 'onboarding form'
FROM gen, litigation.members AS m
WHERE m.phone IS NOT NULL;

-- Clients, each with a valid GSTIN: state code, a company PAN, entity 1, Z, check character.
INSERT INTO litigation.clients (tenant_id, id, name, gstin)
SELECT f, id, client.name, first14 || litigation.gstin_check_character(first14)
FROM gen, generate_series(1, gen.firms) AS f, generate_series(1, gen.clients_per_firm) AS k,
     LATERAL (SELECT (f - 1) * gen.clients_per_firm + k AS id) AS ids,
     LATERAL (SELECT pg_temp.pick('{Shree Ganesh,Balaji,Sai Krishna,Vardhman,Annapurna,Kaveri,Sahyadri,Narmada,Om Sai,Lakshmi Narayan,Deccan,Coromandel}', 'client-a', id)
                     || ' ' ||
                     pg_temp.pick('{Textiles,Steel Traders,Pharma,Logistics,Agro Foods,Infra Projects,Electricals,Auto Components,Chemicals,Exports}', 'client-b', id)
                     || ' Pvt Ltd' AS name) AS client,
     LATERAL (SELECT pg_temp.pick('{27,29,07,33,24,09,19,36,32,08}', 'state', id)
                     || chr(65 + floor(pg_temp.rnd('pan1', id) * 26)::int)
                     || chr(65 + floor(pg_temp.rnd('pan2', id) * 26)::int)
                     || chr(65 + floor(pg_temp.rnd('pan3', id) * 26)::int)
                     || 'C' || left(upper(client.name), 1)
                     || lpad(floor(pg_temp.rnd('pan-no', id) * 10000)::int::text, 4, '0')
                     || chr(65 + floor(pg_temp.rnd('pan4', id) * 26)::int)
                     || '1Z' AS first14) AS gstin;

-- Cases under sections 73, 74, 74A (show cause), 107 (first appeal) and 112 (tribunal).
INSERT INTO litigation.cases (tenant_id, id, client_id, reference, section, stage, demand_amount, owner_id, status)
SELECT f, id,
       (f - 1) * gen.clients_per_firm + 1 + (k - 1) % gen.clients_per_firm,
       CASE WHEN section IN ('107', '112') THEN 'APL/' ELSE 'SCN/' END || section || '/'
           || (2022 + id % 4) || '-' || lpad(((2023 + id % 4) % 100)::text, 2, '0') || '/' || lpad(k::text, 5, '0'),
       section,
       CASE WHEN closed THEN 'closed'
            WHEN section = '107' THEN 'first_appeal'
            WHEN section = '112' THEN 'tribunal'
            ELSE pg_temp.pick('{scrutiny,show_cause,show_cause,reply_filed,personal_hearing,order}', 'stage', id) END,
       round(exp(11 + pg_temp.rnd('demand', id) * 6)::numeric, -2),
       (f - 1) * gen.members_per_firm + pg_temp.pick('{1,3,4,5,6}', 'owner', id)::int,
       CASE WHEN closed THEN 'closed' ELSE 'open' END
FROM gen, generate_series(1, gen.firms) AS f, generate_series(1, gen.cases_per_firm) AS k,
     LATERAL (SELECT (f - 1) * gen.cases_per_firm + k AS id) AS ids,
     LATERAL (SELECT pg_temp.pick('{73,73,73,74,74,74A,107,107,112}', 'section', id) AS section,
                     pg_temp.rnd('closed', id) < 0.1 AS closed) AS c;

-- Hearings, from 30 days ago to 30 days ahead, at a court's local hour in the firm's zone.
INSERT INTO litigation.hearings (tenant_id, id, case_id, starts_at, forum, venue, status)
SELECT c.tenant_id, i, c.id, h.starts_at,
       CASE c.section
           WHEN '107' THEN 'Appellate Authority (Commissioner of CGST Appeals)'
           WHEN '112' THEN pg_temp.pick('{GST Appellate Tribunal - Principal Bench,GST Appellate Tribunal - State Bench}', 'tribunal', i)
           ELSE pg_temp.pick('{Adjudicating Authority (Joint Commissioner of CGST),Adjudicating Authority (Deputy Commissioner of State Tax),Adjudicating Authority (Additional Commissioner of CGST)}', 'adjudicator', i) END,
       pg_temp.pick('{GST Bhavan Churchgate Mumbai,Central Revenue Building Queens Road Bengaluru,CR Building IP Estate New Delhi,GST Bhavan Nungambakkam Chennai,Virtual hearing (video link)}', 'venue', i),
       CASE WHEN h.starts_at < gen.anchor
            THEN CASE WHEN pg_temp.rnd('held', i) < 0.8 THEN 'held' ELSE 'adjourned' END
            ELSE CASE WHEN pg_temp.rnd('cancelled', i) < 0.05 THEN 'cancelled' ELSE 'scheduled' END END
FROM gen, generate_series(1, gen.hearings) AS i,
     LATERAL (SELECT 1 + (i - 1) % gen.firms AS tenant_id) AS t,
     LATERAL (SELECT cs.* FROM litigation.cases AS cs
              WHERE cs.tenant_id = t.tenant_id
                AND cs.id = (t.tenant_id - 1) * gen.cases_per_firm + 1 + ((i - 1) / gen.firms) % gen.cases_per_firm) AS c,
     LATERAL (SELECT ((date_trunc('day', gen.anchor AT TIME ZONE tn.timezone))::date
                      + (floor(pg_temp.rnd('hearing-day', i) * 61)::int - 30)
                      + pg_temp.pick('{10:30,11:00,12:15,14:30,15:00}', 'hearing-time', i)::time)
                     AT TIME ZONE tn.timezone AS starts_at
              FROM litigation.tenants AS tn WHERE tn.id = t.tenant_id) AS h;

-- Tasks: open_share open or in progress, 30% by default (a quarter of those overdue, some
-- about to breach their SLA); of the rest, 13 in 14 completed.
INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, priority, status, due_at, sla_due_at, completed_at)
SELECT t.tenant_id, i,
       (t.tenant_id - 1) * gen.cases_per_firm + 1 + ((i - 1) / gen.firms) % gen.cases_per_firm,
       pg_temp.pick('{Draft reply to show cause notice (DRC-06),Collect purchase invoices and GSTR-2B from client,Reconcile GSTR-1 with GSTR-3B for the period,Compute pre-deposit for appeal,Prepare appeal memo (APL-01),Brief counsel for personal hearing,File adjournment request,Obtain vakalatnama signed by client,Prepare written submissions,Review order and advise client on appeal}', 'title', i),
       (t.tenant_id - 1) * gen.members_per_firm + pg_temp.pick('{3,4,5,6,5,6}', 'assignee', i)::int,
       pg_temp.pick('{low,normal,normal,normal,high,high,urgent}', 'priority', i),
       s.status,
       s.due_at,
       CASE WHEN s.status IN ('open', 'in_progress') AND i % 50 = 0
            THEN gen.anchor + (i % 120) * interval '1 minute'   -- about to breach
            ELSE s.due_at - interval '1 day' END,
       CASE WHEN s.status = 'completed'
            THEN s.due_at - (pg_temp.rnd('done', i) * 60 - 12) * interval '1 hour' END
FROM gen, generate_series(1, gen.tasks) AS i,
     LATERAL (SELECT 1 + (i - 1) % gen.firms AS tenant_id) AS t,
     LATERAL (SELECT CASE WHEN r < gen.open_share * 2 / 3 THEN 'open'
                          WHEN r < gen.open_share THEN 'in_progress'
                          WHEN r < gen.open_share + (1 - gen.open_share) * 13 / 14 THEN 'completed'
                          ELSE 'cancelled' END AS status,
                     CASE WHEN r < gen.open_share
                          THEN gen.anchor + (pg_temp.rnd('due', i) * 20 - 5) * interval '1 day'
                          ELSE gen.anchor - (pg_temp.rnd('due', i) * 90 + 1) * interval '1 day' END AS due_at
              FROM (SELECT pg_temp.rnd('status', i) AS r) AS roll) AS s;

-- Deadlines: from 20 days ago to 40 days ahead; most past ones met, some missed, a few still open.
INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, status, owner_id)
SELECT t.tenant_id, i,
       (t.tenant_id - 1) * gen.cases_per_firm + 1 + ((i - 1) / gen.firms) % gen.cases_per_firm,
       pg_temp.pick('{Reply to show cause notice (DRC-06),Appeal to Appellate Authority (APL-01),Appeal to GST Appellate Tribunal (APL-05),Payment of pre-deposit,Rectification application (section 161),Reply to scrutiny notice (ASMT-11)}', 'kind', i),
       d.due_on,
       CASE WHEN d.due_on >= (gen.anchor AT TIME ZONE 'Asia/Kolkata')::date THEN 'open'
            ELSE pg_temp.pick('{met,met,met,met,met,met,met,missed,waived,open}', 'deadline-status', i) END,
       (t.tenant_id - 1) * gen.members_per_firm + pg_temp.pick('{1,3,4,5}', 'deadline-owner', i)::int
FROM gen, generate_series(1, gen.deadlines) AS i,
     LATERAL (SELECT 1 + (i - 1) % gen.firms AS tenant_id) AS t,
     LATERAL (SELECT (gen.anchor AT TIME ZONE 'Asia/Kolkata')::date
                     + (floor(pg_temp.rnd('due-on', i) * 61)::int - 20) AS due_on) AS d;

-- Case events, one for every ten deadlines where asked (gstjobs_gen.events): notices and
-- orders of the last 60 days, each recorded as the firm's application records it, so the
-- deadlines it gives are computed (sql/60_deadlines.sql, a row at a time: the trigger), on top
-- of the deadlines above, with ids after theirs.
SELECT setval(pg_get_serial_sequence('litigation.deadlines', 'id'), greatest((SELECT max(id) FROM litigation.deadlines), 1));
INSERT INTO litigation.case_events (tenant_id, id, case_id, kind, event_on, document_ref, financial_year)
SELECT t.tenant_id, i,
       (t.tenant_id - 1) * gen.cases_per_firm + 1 + ((i - 1) / gen.firms) % gen.cases_per_firm,
       pg_temp.pick('{scrutiny_notice_served,scn_73_issued,scn_74_issued,order_communicated,order_communicated,appellate_order_communicated}', 'event-kind', i),
       (gen.anchor AT TIME ZONE 'Asia/Kolkata')::date - floor(pg_temp.rnd('event-on', i) * 60)::int,
       'DIN ' || (20260000000000 + i), '2022-23'
FROM gen, generate_series(1, coalesce(current_setting('gstjobs_gen.events', true)::int, 0)) AS i,
     LATERAL (SELECT 1 + (i - 1) % gen.firms AS tenant_id) AS t;
-- ... and the firm has acted on most of those already past, as on the manual ones above (replied,
-- paid, appealed): without this, every computed deadline of an event 30-60 days old is still
-- open, and deadline-alerts alerts twice what a practice would see.
UPDATE litigation.deadlines AS d
SET status = pg_temp.pick('{met,met,met,met,met,met,met,missed,waived,open}', 'computed-status', d.id)
FROM gen
WHERE d.origin = 'computed' AND d.status = 'open'
  AND d.due_on < (gen.anchor AT TIME ZONE 'Asia/Kolkata')::date;

-- Rows were given explicit ids: move each identity past them.
SELECT setval(pg_get_serial_sequence('litigation.tenants', 'id'), greatest((SELECT max(id) FROM litigation.tenants), 1)),
       setval(pg_get_serial_sequence('litigation.members', 'id'), greatest((SELECT max(id) FROM litigation.members), 1)),
       setval(pg_get_serial_sequence('litigation.clients', 'id'), greatest((SELECT max(id) FROM litigation.clients), 1)),
       setval(pg_get_serial_sequence('litigation.cases', 'id'), greatest((SELECT max(id) FROM litigation.cases), 1)),
       setval(pg_get_serial_sequence('litigation.hearings', 'id'), greatest((SELECT max(id) FROM litigation.hearings), 1)),
       setval(pg_get_serial_sequence('litigation.tasks', 'id'), greatest((SELECT max(id) FROM litigation.tasks), 1)),
       setval(pg_get_serial_sequence('litigation.deadlines', 'id'), greatest((SELECT max(id) FROM litigation.deadlines), 1)),
       setval(pg_get_serial_sequence('litigation.case_events', 'id'), greatest((SELECT max(id) FROM litigation.case_events), 1));

DROP TABLE gen;
ANALYZE litigation.tenants, litigation.members, litigation.clients, litigation.cases,
        litigation.hearings, litigation.tasks, litigation.deadlines, litigation.whatsapp_consents,
        litigation.case_events;
