-- Back to 0016: no weekly summary. Choices for it go with the kind; summaries already written
-- stay in the outbox as they are (sent, or sent by the next dispatch).
SET ROLE gstjobs_owner;

DELETE FROM litigation.notification_preferences WHERE kind = 'deadlines-ahead';
DELETE FROM litigation.notification_defaults WHERE kind = 'deadlines-ahead';
DELETE FROM gstjobs.notification_kinds WHERE kind = 'deadlines-ahead';
-- head's operators' functions for digest times (re-applied from sql/25_preferences.sql)
DROP FUNCTION IF EXISTS gstjobs.set_digest_time(bigint, bigint, time, smallint[], text);
DROP FUNCTION IF EXISTS gstjobs.digest_time_of(bigint, bigint);

RESET ROLE;
