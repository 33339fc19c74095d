-- Back to 0008: the transitional date returns to the rule (as 0002 shipped it), the other
-- notified dates and the department's notice and rectification limits go. Deadlines computed
-- from those rules go with them; one a person took over stays, as a manual deadline.
SET ROLE gstjobs_owner;
SET LOCAL gstjobs.computing_deadlines = 'on';
UPDATE litigation.deadlines SET origin = 'manual', rule_key = NULL
WHERE rule_key IN ('notice-limit-73', 'notice-limit-74', 'notice-limit-74a', 'rectification-limit-161')
  AND origin <> 'computed';
DELETE FROM litigation.deadlines
WHERE rule_key IN ('notice-limit-73', 'notice-limit-74', 'notice-limit-74a', 'rectification-limit-161');
DELETE FROM gstjobs.deadline_rules
WHERE key IN ('notice-limit-73', 'notice-limit-74', 'notice-limit-74a', 'rectification-limit-161');

ALTER TABLE gstjobs.deadline_rules
    ADD COLUMN later_of date,
    ADD COLUMN later_of_for_events_before date,
    ADD CHECK ((later_of IS NULL) = (later_of_for_events_before IS NULL));
UPDATE gstjobs.deadline_rules AS r SET later_of = n.last_day, later_of_for_events_before = n.for_events_before
FROM gstjobs.notified_dates AS n
WHERE n.rule_key = r.key AND n.notification = 'as recorded on the rule' AND n.for_events_before IS NOT NULL;
UPDATE gstjobs.deadline_rules
SET later_of = '2026-06-30', later_of_for_events_before = '2024-04-01',
    source = 'CGST Act s. 112(1); condonation s. 112(6); transitional date as notified',
    notes = 'within 3 months of communication; orders communicated before 1 Apr 2024: until the notified date (30 Jun 2026) where later'
WHERE key = 'appeal-112';
DROP TABLE gstjobs.notified_dates;

ALTER TABLE gstjobs.deadline_rules
    DROP CONSTRAINT deadline_rules_limits_the_event_check,
    DROP CONSTRAINT deadline_rules_counted_back_from_check,
    DROP COLUMN limits_the_event,
    DROP COLUMN counted_back_from,
    DROP CONSTRAINT deadline_rules_counted_from_check,
    ADD CONSTRAINT deadline_rules_counted_from_check CHECK (counted_from IN ('event', 'annual_return_due'));

ALTER TABLE gstjobs.case_event_kinds
    DROP COLUMN first_financial_year, DROP COLUMN last_financial_year, DROP COLUMN applies_because;
SET LOCAL gstjobs.computing_deadlines = '';
RESET ROLE;
