-- Settings the toolkit knows: default, kind, bounds, who may change them. A row in
-- gstjobs.settings overrides a default; every value is checked where it is stored (the trigger
-- gstjobs.check_setting of migration 0004 calls gstjobs.setting_problem). Secrets live in
-- gstjobs.secrets, bound to the endpoint they were set for. Re-applied on every upgrade to head.

SET ROLE gstjobs_owner;

-- changed_by: operator (members of gstjobs_operator), admin (members of gstjobs_admin: where
-- messages go, with which credentials, and how long history is kept), dba (a superuser: which
-- server files gstjobs may read).
-- columns added since the first release come last: CREATE OR REPLACE VIEW keeps the order
CREATE OR REPLACE VIEW gstjobs.setting_defaults (key, default_value, kind, description, minimum, maximum, changed_by) AS VALUES
    ('ops.timezone', 'Asia/Kolkata', 'zone', 'IANA zone of the operations team: health-check runs at 07:00 there', NULL::integer, NULL::integer, 'operator'),
    ('ops.email', '', 'emails', 'comma-separated addresses that receive health alerts', NULL, NULL, 'operator'),
    ('slots.catchup_hours', '12', 'integer', 'a local-time slot missed by more than this is recorded as missed, not run (at most a week)', 1, 168, 'operator'),
    ('slots.late_after_minutes', '30', 'integer', 'a slot run more than this after its time is marked late', 1, 1440, 'operator'),
    ('sla.batch_size', '1000', 'integer', 'tasks sla-check takes per statement; a backlog is done in committed batches', 1, 100000, 'operator'),
    ('retention.run_history_days', '90', 'integer', 'run ledger and cron.job_run_details rows kept this long', 7, 3650, 'admin'),
    ('retention.notifications_days', '90', 'integer', 'sent notifications kept this long', 7, 3650, 'admin'),
    ('retention.audit_days', '2557', 'integer', 'audit log rows kept this long (7 years; at least one)', 365, 36500, 'admin'),
    ('purge.batch_size', '5000', 'integer', 'rows purge-history deletes per statement', 1, 100000, 'operator'),
    ('health.stuck_after_minutes', '60', 'integer', 'a run still running after this is reported stuck', 1, 10080, 'operator'),
    ('health.backlog_minutes', '30', 'integer', 'a notification due for longer than this counts as backlog', 1, 10080, 'operator'),
    ('health.regression_factor', '3', 'integer', 'a run this many times slower than its median is a regression', 2, 100, 'operator'),
    ('dispatch.run_seconds', '60', 'integer', 'how long a dispatch run goes on claiming what is due; a run pg_cron starts also stops just before the next minute''s tick, so that runs do not claim side by side (the next run begins while it finishes the messages under way)', 5, 3000, 'operator'),
    ('dispatch.max_attempts', '8', 'integer', 'delivery attempts before a notification is dead', 1, 100, 'operator'),
    ('dispatch.per_firm_limit', '0', 'integer', 'messages per firm and channel a dispatch run attempts; 0: no limit', 0, 100000, 'operator'),
    ('smtp.host', '', 'host', 'SMTP server (name or address); empty (the default): no email is sent', NULL, NULL, 'admin'),
    ('smtp.port', '25', 'integer', 'SMTP port', 1, 65535, 'admin'),
    ('smtp.tls', 'none', 'tls', 'none, starttls or tls (implicit); a password is sent in clear to a loopback server only', NULL, NULL, 'admin'),
    ('smtp.ca_dir', '/etc/gstjobs/ca', 'directory', 'the directory on the database server smtp.ca_file must be in (set by a superuser)', NULL, NULL, 'dba'),
    ('smtp.ca_file', '', 'path', 'CA certificates (PEM, a file in smtp.ca_dir) to verify the SMTP server by; empty: the system''s', NULL, NULL, 'admin'),
    ('smtp.user', '', 'text', 'SMTP login; empty: no login', NULL, NULL, 'admin'),
    ('smtp.password', '', 'secret', 'SMTP password (secret: stored apart, never shown, used only with the server, login, TLS and CA it was set with)', NULL, NULL, 'admin'),
    ('smtp.from', 'gstjobs@localhost', 'email', 'From address of every email', NULL, NULL, 'admin'),
    ('smtp.reply_to', '', 'emails', 'Reply-To address; empty: none', NULL, NULL, 'admin'),
    ('smtp.timeout_seconds', '10', 'integer', 'SMTP connection and command timeout', 1, 300, 'operator'),
    ('smtp.rate_per_second', '250', 'integer', 'emails per second the SMTP server accepts from us, across every dispatcher (your relay''s limit: docs/DELIVERY.md)', 1, 10000, 'admin'),
    ('smtp.connections', '16', 'integer', 'SMTP sessions a dispatch run keeps open at once', 1, 64, 'operator'),
    ('whatsapp.url', '', 'url', 'WhatsApp Cloud API base URL, https://, e.g. https://graph.facebook.com/v19.0/PHONE_ID; empty: no WhatsApp', NULL, NULL, 'admin'),
    ('whatsapp.token', '', 'secret', 'WhatsApp bearer token (secret: stored apart, never shown, used only with the URL it was set with)', NULL, NULL, 'admin'),
    ('whatsapp.timeout_seconds', '10', 'integer', 'WhatsApp HTTP timeout', 1, 300, 'operator'),
    ('whatsapp.rate_per_second', '80', 'integer', 'WhatsApp messages per second the API accepts from us, across every dispatcher (Cloud API: 80 per phone number, up to 1,000 when upgraded)', 1, 1000, 'admin'),
    ('whatsapp.connections', '32', 'integer', 'WhatsApp requests a dispatch run has under way at once', 1, 128, 'operator'),
    ('timeout.analytics-snapshot', '600', 'integer', 'seconds a run of analytics-snapshot may take: past it, its statement is cancelled and the run ends failed, "timed out"', 10, 86400, 'operator'),
    ('timeout.deadline-alerts', '600', 'integer', 'seconds a run of deadline-alerts may take: past it, its statement is cancelled and the run ends failed, "timed out"', 10, 86400, 'operator'),
    ('timeout.dispatch-notifications', '75', 'integer', 'seconds a run of dispatch-notifications may take: past it, its statement is cancelled and the run ends failed, "timed out"; a run claims for dispatch.run_seconds (under its one-minute interval) and stops claiming in time to finish the messages under way, each within its channel''s timeout, before this', 10, 86400, 'operator'),
    ('timeout.health-check', '600', 'integer', 'seconds a run of health-check may take: past it, its statement is cancelled and the run ends failed, "timed out"', 10, 86400, 'operator'),
    ('timeout.hearing-reminders', '600', 'integer', 'seconds a run of hearing-reminders may take: past it, its statement is cancelled and the run ends failed, "timed out"', 10, 86400, 'operator'),
    ('timeout.heartbeat', '60', 'integer', 'seconds a run of heartbeat may take: past it, its statement is cancelled and the run ends failed, "timed out"', 10, 86400, 'operator'),
    ('timeout.purge-history', '600', 'integer', 'seconds a run of purge-history may take: past it, its statement is cancelled and the run ends failed, "timed out"', 10, 86400, 'operator'),
    ('timeout.sla-check', '600', 'integer', 'seconds a run of sla-check may take: past it, its statement is cancelled and the run ends failed, "timed out"', 10, 86400, 'operator');

CREATE OR REPLACE FUNCTION gstjobs.setting(key text) RETURNS text
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

-- Operators, admins and provisioners: the zone times are shown in (setting ops.timezone);
-- not a secret, and all a provisioner may read of the settings.
CREATE OR REPLACE FUNCTION gstjobs.display_timezone() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN gstjobs.setting('ops.timezone');
COMMENT ON FUNCTION gstjobs.display_timezone() IS 'the zone the CLI shows times in: setting ops.timezone';

-- Operators and admins: a setting's definition, or an error that lists the settings (what the
-- CLI's config commands and gstjobs.set_settings ask first).
CREATE OR REPLACE FUNCTION gstjobs.setting_definition(key text) RETURNS gstjobs.setting_defaults
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    definition gstjobs.setting_defaults;
BEGIN
    SELECT * INTO definition FROM gstjobs.setting_defaults AS d WHERE d.key = setting_definition.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting %', quote_literal(left(key, 100))
            USING ERRCODE = 'undefined_object',
                  HINT = 'settings are: ' || (SELECT string_agg(d.key, ', ' ORDER BY d.key) FROM gstjobs.setting_defaults AS d);
    END IF;
    RETURN definition;
END
$$;
COMMENT ON FUNCTION gstjobs.setting_definition(text) IS 'a setting''s kind, bounds and who may change it, or an error that lists the settings';

-- ------------------------------------------------------------------ secrets ----------------

CREATE OR REPLACE FUNCTION gstjobs.secret_endpoint(key text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    -- everything that decides where a secret goes and how: a change to any of it makes the
    -- secret unusable until it is set again
    RETURN CASE key
        WHEN 'smtp.password' THEN format('smtp://%s@%s:%s tls=%s ca=%s',
            gstjobs.setting('smtp.user'), gstjobs.setting('smtp.host'), gstjobs.setting('smtp.port'),
            gstjobs.setting('smtp.tls'), coalesce(nullif(gstjobs.setting('smtp.ca_file'), ''), 'system'))
        WHEN 'whatsapp.token' THEN gstjobs.setting('whatsapp.url')
    END;
COMMENT ON FUNCTION gstjobs.secret_endpoint(text) IS 'the endpoint a secret would be sent to with the settings now in force';

-- Operators and admins (through gstjobs.configuration): says where a secret was set for, never
-- what it is.
CREATE OR REPLACE FUNCTION gstjobs.secret_problem(key text) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT format('%s was set for %s, and the endpoint is now %s: it is not used until it is set again',
                          s.key, s.endpoint, gstjobs.secret_endpoint(s.key))
            FROM gstjobs.secrets AS s
            WHERE s.key = secret_problem.key
              AND s.endpoint IS DISTINCT FROM gstjobs.secret_endpoint(s.key));
COMMENT ON FUNCTION gstjobs.secret_problem(text) IS 'why a secret that is set may not be used, or NULL';

CREATE OR REPLACE FUNCTION gstjobs.secret(key text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT s.value FROM gstjobs.secrets AS s
            WHERE s.key = secret.key AND s.endpoint = gstjobs.secret_endpoint(s.key));
COMMENT ON FUNCTION gstjobs.secret(text) IS 'a secret''s value while the endpoint is the one it was set for, else NULL; for the dispatcher (the owner) only';

-- Secrets stored before secrets were bound (revision 0004) are bound to the endpoint in force
-- now; from then on gstjobs.set_settings binds each one as it is set.
UPDATE gstjobs.secrets SET endpoint = gstjobs.secret_endpoint(key) WHERE endpoint IS NULL;

RESET ROLE;

-- ------------------------------------------------------------------ PL/Python --------------
-- The check of every stored value (trigger gstjobs.check_setting) and of what
-- gstjobs.set_settings is asked to store; operators and admins call it through
-- gstjobs.configuration. It looks at the text it is given and at the settings' kinds only.
CREATE OR REPLACE FUNCTION gstjobs.setting_problem(key text, value text) RETURNS text
    LANGUAGE plpython3u STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $plpy$ settings.setting_problem(key, value) $plpy$;
COMMENT ON FUNCTION gstjobs.setting_problem(text, text) IS 'why a value may not be stored for a setting, or NULL';
ALTER FUNCTION gstjobs.setting_problem(text, text) OWNER TO gstjobs_owner;

-- Owner only: what stands between a channel and delivery now (dispatch-notifications asks
-- before it sends; gstjobs.set_settings refuses a change that would send a credential in clear).
CREATE OR REPLACE FUNCTION gstjobs.delivery_problems(resolve boolean, OUT email text, OUT whatsapp text, OUT in_clear text)
    LANGUAGE plpython3u STABLE
    SET search_path = pg_catalog, pg_temp
AS $plpy$ settings.delivery_problems(resolve) $plpy$;
COMMENT ON FUNCTION gstjobs.delivery_problems(boolean) IS 'why email or WhatsApp may not be sent with the settings in force (resolve: look the hosts up too), and whether a credential would travel in clear';
ALTER FUNCTION gstjobs.delivery_problems(boolean) OWNER TO gstjobs_owner;

SET ROLE gstjobs_owner;
CREATE OR REPLACE VIEW gstjobs.configuration AS
    -- what operators see: a secret only as set or not, never its value
    SELECT d.key,
           CASE WHEN d.kind = 'secret' THEN CASE WHEN sec.key IS NOT NULL THEN '********' END
                ELSE coalesce(s.value, d.default_value) END AS value,
           d.default_value, d.kind, (s.key IS NOT NULL OR sec.key IS NOT NULL) AS is_set,
           d.description, coalesce(s.updated_at, sec.updated_at) AS updated_at,
           coalesce(s.updated_by, sec.updated_by) AS updated_by,
           d.minimum, d.maximum, d.changed_by,
           CASE WHEN d.kind = 'secret' THEN gstjobs.secret_problem(d.key)
                ELSE gstjobs.setting_problem(d.key, coalesce(s.value, d.default_value)) END AS problem
    FROM gstjobs.setting_defaults AS d
    LEFT JOIN gstjobs.settings AS s ON s.key = d.key
    LEFT JOIN gstjobs.secrets AS sec ON sec.key = d.key;
COMMENT ON VIEW gstjobs.configuration IS 'every setting with its value (secrets masked), default, bounds, who may change it, and what is wrong with it';

RESET ROLE;

-- ------------------------------------------------------------------ privileges -------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
-- Operators and admins see every setting (secrets masked), what may be set, and what is wrong.
GRANT SELECT ON gstjobs.setting_defaults, gstjobs.configuration TO gstjobs_operator, gstjobs_admin;
GRANT EXECUTE ON FUNCTION gstjobs.setting_problem(text, text), gstjobs.secret_problem(text),
                          gstjobs.setting_definition(text)
    TO gstjobs_operator, gstjobs_admin;
GRANT EXECUTE ON FUNCTION gstjobs.display_timezone()
    TO gstjobs_operator, gstjobs_admin, gstjobs_provisioner;
