-- Settings the toolkit knows, with their defaults. A row in gstjobs.settings overrides one.
-- Re-applied on every upgrade to head.

SET ROLE gstjobs_owner;

CREATE VIEW gstjobs.setting_defaults (key, default_value, description) AS VALUES
    ('ops.timezone', 'Asia/Kolkata', 'IANA zone of the operations team: health-check runs at 07:00 there'),
    ('ops.email', '', 'comma-separated addresses that receive health alerts'),
    ('slots.catchup_hours', '12', 'a local-time slot missed by more than this is recorded as missed, not run'),
    ('slots.late_after_minutes', '30', 'a slot run more than this after its time is marked late'),
    ('retention.run_history_days', '90', 'run ledger and cron.job_run_details rows kept this long'),
    ('retention.notifications_days', '90', 'sent notifications kept this long'),
    ('retention.audit_days', '2557', 'audit log rows kept this long (7 years)'),
    ('purge.batch_size', '5000', 'rows purge-history deletes per statement'),
    ('sla.batch_size', '1000', 'tasks sla-check takes per statement; a backlog is done in committed batches'),
    ('health.stuck_after_minutes', '60', 'a run still running after this is reported stuck'),
    ('health.backlog_minutes', '30', 'a notification due for longer than this counts as backlog'),
    ('health.regression_factor', '3', 'a run this many times slower than its median is a regression');

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
    WHERE d.key = setting.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting %', quote_literal(key) USING ERRCODE = 'undefined_object';
    END IF;
    RETURN value;
END
$$;
COMMENT ON FUNCTION gstjobs.setting(text) IS 'a setting''s value: gstjobs.settings, else its default';

RESET ROLE;
GRANT SELECT ON gstjobs.setting_defaults TO gstjobs_operator;
