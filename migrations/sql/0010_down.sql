-- Back to 0009: no buckets, no claims (a claimed message is simply pending again); the rate
-- settings go, with a note of what was set.
SET ROLE gstjobs_owner;

INSERT INTO gstjobs.audit_log (action, details, reason)
SELECT 'config.remove', jsonb_build_object('key', s.key, 'value', s.value),
       'revision 0010 undone: no rate settings before it'
FROM gstjobs.settings AS s
WHERE s.key IN ('smtp.rate_per_second', 'smtp.connections', 'whatsapp.rate_per_second',
                'whatsapp.connections', 'dispatch.run_seconds');
DELETE FROM gstjobs.settings
WHERE key IN ('smtp.rate_per_second', 'smtp.connections', 'whatsapp.rate_per_second',
              'whatsapp.connections', 'dispatch.run_seconds');

ALTER TABLE gstjobs.notifications DROP COLUMN claimed_by;
DROP TABLE gstjobs.send_rates;

RESET ROLE;
