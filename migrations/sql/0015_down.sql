-- Back to 0014: emails without the preferences footer and List-Unsubscribe.
SET ROLE gstjobs_owner;
-- the metrics view as 0014 had it (head's counts what this revision's index serves, and names
-- suppressed_at, which revision 0012's downgrade drops): made again, as a view cannot lose
-- columns in place
DROP VIEW gstjobs.outbox_metrics;
CREATE VIEW gstjobs.outbox_metrics AS
    SELECT ch.channel,
           -- through notifications_claim_idx (channel, ... WHERE pending or failed)
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.channel = ch.channel AND n.status = 'pending') AS pending,
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.channel = ch.channel AND n.status = 'failed') AS failed,
           -- through notifications_claimed_idx: in a dispatcher's hands now
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.claimed_by IS NOT NULL AND n.channel = ch.channel) AS sending,
           -- through notifications_dead_idx
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.status = 'dead' AND n.channel = ch.channel) AS dead,
           -- through notifications_sent_idx
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.status = 'sent' AND n.sent_at > now() - interval '24 hours'
              AND n.channel = ch.channel) AS sent_24h,
           coalesce((SELECT extract(epoch FROM now() - min(n.next_attempt_at))
                     FROM gstjobs.notifications AS n
                     WHERE n.channel = ch.channel AND n.status IN ('pending', 'failed')
                       AND n.next_attempt_at <= now()), 0)::float8 AS oldest_due_seconds,
           -- the backlog threshold health-check reports by (setting health.backlog_minutes)
           60 * (SELECT coalesce(s.value, d.default_value)
                 FROM gstjobs.setting_defaults AS d LEFT JOIN gstjobs.settings AS s ON s.key = d.key
                 WHERE d.key = 'health.backlog_minutes')::integer AS backlog_after_seconds
    FROM (VALUES ('email'), ('whatsapp')) AS ch (channel);
COMMENT ON VIEW gstjobs.outbox_metrics IS 'per channel: notifications pending, failed (to retry), sending, dead, sent in 24 h, and how long the oldest due one has waited (Prometheus)';

DROP INDEX gstjobs.notifications_suppressed_idx;
ALTER TABLE litigation.members DROP COLUMN preferences_token;
ALTER TABLE litigation.tenants DROP COLUMN preferences_url;
RESET ROLE;
GRANT SELECT ON gstjobs.outbox_metrics TO gstjobs_monitor, gstjobs_operator;
