-- A new holiday calendar closes on Sundays only unless it names more closed weekdays (a
-- forum that sits on Saturdays must not get a last day two days late; docs/DEADLINES.md).
-- Calendars already stored keep the weekdays they have. No row changes: the lock is a moment.
SET ROLE gstjobs_owner;
ALTER TABLE litigation.holiday_calendars ALTER COLUMN closed_weekdays SET DEFAULT '{7}';
COMMENT ON COLUMN litigation.holiday_calendars.closed_weekdays IS 'ISO weekdays the forum is closed (1 Monday .. 7 Sunday); Sundays only unless named';
RESET ROLE;
