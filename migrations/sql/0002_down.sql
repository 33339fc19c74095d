-- Back to the baseline: computed deadlines become plain (manual) ones, the firm's events and
-- calendars and the rules are removed. The re-applied functions of head stay until the next
-- `alembic upgrade head` (docs/MIGRATIONS.md).

-- CASCADE, here and below: head's re-applied functions that read these columns or take these
-- rows go too (sql/deadlines.sql); the next `alembic upgrade head` creates them again
DROP TRIGGER note_hand_change ON litigation.deadlines;
ALTER TABLE litigation.deadlines
    DROP CONSTRAINT deadlines_computed_have_a_rule,
    DROP CONSTRAINT deadlines_one_per_event_and_rule,
    DROP CONSTRAINT deadlines_event_fkey,
    DROP COLUMN computation CASCADE,
    DROP COLUMN condonable_until CASCADE,
    DROP COLUMN statutory_on CASCADE,
    DROP COLUMN rule_key CASCADE,
    DROP COLUMN event_id CASCADE,
    DROP COLUMN origin CASCADE;

DROP TABLE litigation.case_events, litigation.holidays, litigation.holiday_calendars CASCADE;
DROP FUNCTION litigation.note_hand_change(), litigation.event_changed(), litigation.calendar_changed();
DROP TABLE gstjobs.deadline_rules, gstjobs.annual_return_due_dates, gstjobs.case_event_kinds CASCADE;
