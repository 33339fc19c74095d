-- Back to 0011: no consent records. Suppressed messages are kept as dead letters, their reason
-- in last_error (an operator may retry them, as any dead letter).
SET ROLE gstjobs_owner;

-- what 0012 brought among the re-applied objects (sql/): gone with it
DROP FUNCTION gstjobs.honour_consent(bigint, bigint);
DROP FUNCTION gstjobs.whatsapp_consented(litigation.whatsapp_consents);

DROP TABLE litigation.whatsapp_consents;
DROP FUNCTION litigation.consent_changed();

UPDATE gstjobs.notifications SET status = 'dead' WHERE status = 'suppressed';
ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_suppressed_check;
ALTER TABLE gstjobs.notifications DROP COLUMN suppressed_at;
ALTER TABLE gstjobs.notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE gstjobs.notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'dead'));

RESET ROLE;
