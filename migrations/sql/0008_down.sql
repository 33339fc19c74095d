-- Back to 0007: a new calendar closes on Saturdays and Sundays again.
SET ROLE gstjobs_owner;
ALTER TABLE litigation.holiday_calendars ALTER COLUMN closed_weekdays SET DEFAULT '{6,7}';
COMMENT ON COLUMN litigation.holiday_calendars.closed_weekdays IS NULL;
RESET ROLE;
