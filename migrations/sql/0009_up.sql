-- Notified dates as data with their citation, the department's time limits to issue a notice
-- and to rectify, and the financial years each show-cause section applies to
-- (docs/DEADLINES.md). The counting that uses them is re-applied code (sql/60_deadlines.sql);
-- the re-apply then counts the open deadlines again (gstjobs.deadline_counting()).
SET ROLE gstjobs_owner;

-- ---------------------------------------------------------------- notified dates -----------
CREATE TABLE gstjobs.notified_dates (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_key           text NOT NULL REFERENCES gstjobs.deadline_rules (key) ON UPDATE CASCADE,
    -- as the Gazette names it: 'S.O. 4220(E)', 'Notification No. 09/2023-Central Tax'
    notification       text NOT NULL CHECK (length(notification) BETWEEN 1 AND 200 AND notification !~ '[[:cntrl:]]'),
    notified_on        date NOT NULL CHECK (notified_on >= '2017-06-01'),
    -- the power it was made under: '112(1)', '168A'
    section            text NOT NULL CHECK (length(section) BETWEEN 1 AND 60 AND section !~ '[[:cntrl:]]'),
    -- the class it covers: events (orders communicated, notices issued) on or after / before a
    -- date, and or the financial year the tax relates to
    for_events_from    date,
    for_events_before  date,
    financial_year     text CHECK (
        financial_year ~ '^20[0-9]{2}-[0-9]{2}$'
        AND (substr(financial_year, 3, 2)::integer + 1) % 100 = substr(financial_year, 6, 2)::integer),
    -- the last day it gives, where later than the one counted
    last_day           date NOT NULL CHECK (last_day >= '2017-07-01' AND last_day < '2200-01-01'),
    operative_words    text NOT NULL CHECK (length(operative_words) BETWEEN 1 AND 4000),
    source             text NOT NULL CHECK (length(source) BETWEEN 1 AND 500 AND source !~ '[[:cntrl:]]'),
    verified_on        date,
    active             boolean NOT NULL DEFAULT true,
    CHECK (for_events_from IS NOT NULL OR for_events_before IS NOT NULL OR financial_year IS NOT NULL),
    CHECK (for_events_from < for_events_before),
    UNIQUE NULLS NOT DISTINCT (rule_key, notification, financial_year, for_events_from, for_events_before)
);
COMMENT ON TABLE gstjobs.notified_dates IS
    'dates the Government notified for a rule''s last day (a transitional date, an extension under section 168A), with their citation; the latest that covers an event applies where later than the counted one';

-- ---------------------------------------------------------------- rules --------------------
-- A last day counted back from another rule's (section 73(2): "at least three months prior
-- to the time limit specified in sub-section (10)").
ALTER TABLE gstjobs.deadline_rules
    ADD COLUMN counted_back_from text REFERENCES gstjobs.deadline_rules (key) ON UPDATE CASCADE,
    -- the rule limits the very act the event records (a notice's issue): whether the act came
    -- in time is known when the event is recorded, so the deadline is closed then (met: in
    -- time; open and passed: out of time, alerted once as a time bar)
    ADD COLUMN limits_the_event boolean NOT NULL DEFAULT false,
    DROP CONSTRAINT deadline_rules_counted_from_check,
    ADD CONSTRAINT deadline_rules_counted_from_check
        CHECK (counted_from IN ('event', 'annual_return_due', 'rule')),
    ADD CONSTRAINT deadline_rules_counted_back_from_check
        CHECK ((counted_from = 'rule') = (counted_back_from IS NOT NULL) AND counted_back_from <> key),
    ADD CONSTRAINT deadline_rules_limits_the_event_check CHECK (NOT limits_the_event OR binds = 'department');
COMMENT ON COLUMN gstjobs.deadline_rules.counted_back_from IS
    'with counted_from = ''rule'': the period ends `period` before the last day of this other rule for the same event';

-- The transitional date moves to gstjobs.notified_dates, corrected: S.O. 4220(E) covers orders
-- communicated before 1 April 2026, not 2024. A rule of the firm's own with such a date keeps
-- it there, cited as the rule's own.
INSERT INTO gstjobs.notified_dates
    (rule_key, notification, notified_on, section, for_events_before, last_day, operative_words, source)
SELECT key, 'as recorded on the rule', coalesce(verified_on, '2017-07-01'), section,
       later_of_for_events_before, later_of, coalesce(notes, name), source
FROM gstjobs.deadline_rules
WHERE later_of IS NOT NULL AND key <> 'appeal-112';
ALTER TABLE gstjobs.deadline_rules DROP COLUMN later_of, DROP COLUMN later_of_for_events_before;
UPDATE gstjobs.deadline_rules
SET source = 'CGST Act s. 112(1) (as amended by the Finance (No. 2) Act, 2024); condonation s. 112(6)',
    notes = 'within 3 months of communication, or the date notified under section 112(1) where later (gstjobs.notified_dates)'
WHERE key = 'appeal-112';

INSERT INTO gstjobs.notified_dates
    (rule_key, notification, notified_on, section, for_events_before, financial_year, last_day,
     operative_words, source) VALUES
    ('appeal-112', 'S.O. 4220(E)', '2025-09-17', '112(1)', '2026-04-01', NULL, '2026-06-30',
     'hereby notifies the 30th day of June, 2026, as the date upto which appeal may be filed before '
     'the Appellate Tribunal under this Act in respect of all cases where the order sought to be '
     'appealed against is communicated to the person preferring the appeal before the 1st day of '
     'April, 2026',
     'Gazette of India, Extraordinary, Part II, Section 3(ii), CG-DL-E-17092025-266217; F. No. A-50/7/2025-GSTAT-DoR'),
    ('order-limit-73', 'Notification No. 13/2022-Central Tax', '2022-07-05', '168A', NULL, '2017-18', '2023-09-30',
     'extends the time limit specified under sub-section (10) of section 73 for issuance of order '
     'under sub-section (9) of section 73 of the said Act, ... in respect of a tax period for the '
     'financial year 2017-18, up to the 30th day of September, 2023',
     'G.S.R. 516(E), 5 July 2022; F. No. CBIC-20001/2/2022-GST'),
    ('order-limit-73', 'Notification No. 09/2023-Central Tax', '2023-03-31', '168A', NULL, '2017-18', '2023-12-31',
     'extends the time limit specified under sub-section (10) of section 73 for issuance of order '
     'under sub-section (9) of section 73 ... (i) for the financial year 2017-18, upto the 31st day of December, 2023',
     'F. No. CBIC-20013/1/2023-GST, 31 March 2023'),
    ('order-limit-73', 'Notification No. 09/2023-Central Tax', '2023-03-31', '168A', NULL, '2018-19', '2024-03-31',
     'extends the time limit specified under sub-section (10) of section 73 for issuance of order '
     'under sub-section (9) of section 73 ... (ii) for the financial year 2018-19, upto the 31st day of March, 2024',
     'F. No. CBIC-20013/1/2023-GST, 31 March 2023'),
    ('order-limit-73', 'Notification No. 09/2023-Central Tax', '2023-03-31', '168A', NULL, '2019-20', '2024-06-30',
     'extends the time limit specified under sub-section (10) of section 73 for issuance of order '
     'under sub-section (9) of section 73 ... (iii) for the financial year 2019-20, upto the 30th day of June, 2024',
     'F. No. CBIC-20013/1/2023-GST, 31 March 2023'),
    ('order-limit-73', 'Notification No. 56/2023-Central Tax', '2023-12-28', '168A', NULL, '2018-19', '2024-04-30',
     'extends the time limit specified under sub-section (10) of section 73 for issuance of order '
     'under sub-section (9) of section 73 ... (i) For the financial year 2018-19, up to the 30th day of April, 2024',
     'Notification No. 56/2023-Central Tax, 28 December 2023'),
    ('order-limit-73', 'Notification No. 56/2023-Central Tax', '2023-12-28', '168A', NULL, '2019-20', '2024-08-31',
     'extends the time limit specified under sub-section (10) of section 73 for issuance of order '
     'under sub-section (9) of section 73 ... (ii) For the financial year 2019-20, up to the 31st day of August, 2024',
     'Notification No. 56/2023-Central Tax, 28 December 2023');

-- The department's time limits to issue the notice and to rectify.
INSERT INTO gstjobs.deadline_rules
    (key, name, section, source, trigger_event, counted_from, counted_back_from, period, unit,
     binds, forum, rolls_forward, limits_the_event, notes) VALUES
    ('notice-limit-73', 'Last date to issue the notice under section 73', '73(2)',
     'CGST Act s. 73(2)', 'scn_73_issued', 'rule', 'order-limit-73', 3, 'months',
     'department', 'proper_officer', false, true,
     'at least 3 months before the time limit of section 73(10) (as extended); a notice after it is time-barred'),
    ('notice-limit-74', 'Last date to issue the notice under section 74', '74(2)',
     'CGST Act s. 74(2)', 'scn_74_issued', 'rule', 'order-limit-74', 6, 'months',
     'department', 'proper_officer', false, true,
     'at least 6 months before the time limit of section 74(10); a notice after it is time-barred'),
    ('notice-limit-74a', 'Last date to issue the notice under section 74A', '74A(2)',
     'CGST Act s. 74A(2)', 'scn_74a_issued', 'annual_return_due', NULL, 42, 'months',
     'department', 'proper_officer', false, true,
     '42 months from the due date of the annual return of the financial year; a notice after it is time-barred'),
    ('rectification-limit-161', 'Last date for the authority to rectify the order', '161',
     'CGST Act s. 161, first proviso', 'order_issued', 'event', NULL, 6, 'months',
     'department', 'proper_officer', false, false,
     'no rectification after six months from the date of issue of the order');

-- ---------------------------------------------------------------- applicability ------------
ALTER TABLE gstjobs.case_event_kinds
    ADD COLUMN first_financial_year text CHECK (first_financial_year ~ '^20[0-9]{2}-[0-9]{2}$'),
    ADD COLUMN last_financial_year  text CHECK (last_financial_year ~ '^20[0-9]{2}-[0-9]{2}$'),
    ADD COLUMN applies_because      text CHECK (length(applies_because) BETWEEN 1 AND 300);
COMMENT ON COLUMN gstjobs.case_event_kinds.last_financial_year IS
    'the last financial year the event''s section applies to (section 73(12): up to 2023-24); an event for a later year is recorded with a warning in case_events.unresolved';
UPDATE gstjobs.case_event_kinds
SET last_financial_year = '2023-24',
    applies_because = 'section 73(12): section 73 applies to tax for the period up to financial year 2023-24'
WHERE kind = 'scn_73_issued';
UPDATE gstjobs.case_event_kinds
SET last_financial_year = '2023-24',
    applies_because = 'section 74(12): section 74 applies to tax for the period up to financial year 2023-24'
WHERE kind = 'scn_74_issued';
UPDATE gstjobs.case_event_kinds
SET first_financial_year = '2024-25',
    applies_because = 'section 74A(1): section 74A applies to tax for financial year 2024-25 onwards'
WHERE kind = 'scn_74a_issued';

RESET ROLE;

GRANT SELECT ON gstjobs.notified_dates TO gstjobs_app, gstjobs_operator;
