-- Settings the toolkit knows, with their defaults. A row in gstjobs.settings overrides one.
-- Re-applied on every upgrade to head.

SET ROLE gstjobs_owner;

CREATE VIEW gstjobs.setting_defaults (key, default_value, kind, description) AS VALUES
    ('ops.timezone', 'Asia/Kolkata', 'zone', 'IANA zone of the operations team: health-check runs at 07:00 there'),
    ('ops.email', '', 'emails', 'comma-separated addresses that receive health alerts'),
    ('slots.catchup_hours', '12', 'positive', 'a local-time slot missed by more than this is recorded as missed, not run'),
    ('slots.late_after_minutes', '30', 'positive', 'a slot run more than this after its time is marked late'),
    ('sla.batch_size', '1000', 'positive', 'tasks sla-check takes per statement; a backlog is done in committed batches'),
    ('retention.run_history_days', '90', 'positive', 'run ledger and cron.job_run_details rows kept this long'),
    ('retention.notifications_days', '90', 'positive', 'sent notifications kept this long'),
    ('retention.audit_days', '2557', 'positive', 'audit log rows kept this long (7 years)'),
    ('purge.batch_size', '5000', 'positive', 'rows purge-history deletes per statement'),
    ('health.stuck_after_minutes', '60', 'positive', 'a run still running after this is reported stuck'),
    ('health.backlog_minutes', '30', 'positive', 'a notification due for longer than this counts as backlog'),
    ('health.regression_factor', '3', 'positive', 'a run this many times slower than its median is a regression'),
    ('dispatch.per_run_limit', '100', 'positive', 'messages per channel dispatch-notifications sends per run'),
    ('dispatch.max_attempts', '8', 'positive', 'delivery attempts before a notification is dead'),
    ('dispatch.per_firm_limit', '0', 'count', 'messages per firm dispatch-notifications sends per run; 0: no limit'),
    ('dispatch.batch_size', '1', 'positive', 'messages delivered per commit: 1 keeps the window in which a crash could send one twice to a single message'),
    ('smtp.host', 'localhost', 'host', 'SMTP server'),
    ('smtp.port', '25', 'port', 'SMTP port'),
    ('smtp.tls', 'none', 'tls', 'none, starttls or tls (implicit)'),
    ('smtp.ca_file', '', 'text', 'CA certificates (PEM, a path on the database server) to verify the SMTP server by; empty: the system''s'),
    ('smtp.user', '', 'text', 'SMTP login; empty: no login'),
    ('smtp.password', '', 'secret', 'SMTP password (secret: stored apart, never shown)'),
    ('smtp.from', 'gstjobs@localhost', 'email', 'From address of every email'),
    ('smtp.reply_to', '', 'emails', 'Reply-To address; empty: none'),
    ('smtp.timeout_seconds', '10', 'positive', 'SMTP connection and command timeout'),
    ('whatsapp.url', '', 'url', 'WhatsApp Cloud API base URL, e.g. https://graph.facebook.com/v19.0/PHONE_ID'),
    ('whatsapp.token', '', 'secret', 'WhatsApp bearer token (secret: stored apart, never shown)'),
    ('whatsapp.timeout_seconds', '10', 'positive', 'WhatsApp HTTP timeout');

CREATE FUNCTION gstjobs.setting(key text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    value text;
BEGIN
    SELECT coalesce(s.value, d.default_value) INTO value
    FROM gstjobs.setting_defaults AS d
    LEFT JOIN gstjobs.settings AS s ON s.key = d.key
    WHERE d.key = setting.key AND d.kind <> 'secret';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting %', quote_literal(key) USING ERRCODE = 'undefined_object';
    END IF;
    RETURN value;
END
$$;
COMMENT ON FUNCTION gstjobs.setting(text) IS 'a setting''s value: gstjobs.settings, else its default (not secrets)';

CREATE VIEW gstjobs.configuration AS
    -- what operators see: a secret only as set or not, never its value
    SELECT d.key,
           CASE WHEN d.kind = 'secret' THEN CASE WHEN sec.key IS NOT NULL THEN '********' END
                ELSE coalesce(s.value, d.default_value) END AS value,
           d.default_value, d.kind, (s.key IS NOT NULL OR sec.key IS NOT NULL) AS is_set,
           d.description, coalesce(s.updated_at, sec.updated_at) AS updated_at,
           coalesce(s.updated_by, sec.updated_by) AS updated_by
    FROM gstjobs.setting_defaults AS d
    LEFT JOIN gstjobs.settings AS s ON s.key = d.key
    LEFT JOIN gstjobs.secrets AS sec ON sec.key = d.key;
COMMENT ON VIEW gstjobs.configuration IS 'every setting with its value (secrets masked), default and meaning';

RESET ROLE;
GRANT SELECT ON gstjobs.setting_defaults, gstjobs.configuration TO gstjobs_operator;
