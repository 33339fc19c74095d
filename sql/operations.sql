-- What operators may do, as SECURITY DEFINER functions with a fixed search_path: pause,
-- resume and reschedule jobs, retry a notification, change a setting. Each checks its input,
-- changes nothing when it refuses, and writes the audit log with the old and new values.
-- Re-applied on every upgrade to head.

SET ROLE gstjobs_owner;

CREATE FUNCTION gstjobs.registered_job(job text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM gstjobs.job(registered_job.job);
    IF NOT EXISTS (SELECT FROM cron.job AS c WHERE c.jobname = job AND c.username = 'gstjobs_runner') THEN
        RAISE EXCEPTION 'job % is not scheduled in pg_cron', job
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'run `alembic upgrade head`, which schedules every job';
    END IF;
    RETURN job;
END
$$;

CREATE FUNCTION gstjobs.set_active(job text, active boolean, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was boolean;
BEGIN
    PERFORM gstjobs.registered_job(job);
    SELECT c.active INTO was FROM cron.job AS c
    WHERE c.jobname = job AND c.username = 'gstjobs_runner' FOR UPDATE;
    IF was IS DISTINCT FROM set_active.active THEN
        UPDATE cron.job AS c SET active = set_active.active
        WHERE c.jobname = job AND c.username = 'gstjobs_runner';
        INSERT INTO gstjobs.audit_log (action, job, details, reason)
        VALUES (CASE WHEN active THEN 'resume' ELSE 'pause' END, job,
                jsonb_build_object('old', jsonb_build_object('active', was),
                                   'new', jsonb_build_object('active', active)), reason);
    END IF;
    RETURN jsonb_build_object('job', job, 'was_active', was, 'active', active,
                              'changed', was IS DISTINCT FROM active);
END
$$;
COMMENT ON FUNCTION gstjobs.set_active(text, boolean, text) IS 'pauses (false) or resumes (true) a job; audited';

CREATE FUNCTION gstjobs.reschedule(job text, schedule text, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := gstjobs.cron_problem(schedule);
    was text;
BEGIN
    PERFORM gstjobs.registered_job(job);
    IF problem IS NOT NULL THEN
        -- pg_cron itself accepts some invalid text (a 6-field line) and runs it: never pass it on
        RAISE EXCEPTION 'invalid schedule %: %', quote_literal(left(schedule, 100)), problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'five fields in UTC: minute (0-59) hour (0-23) day-of-month (1-31) '
                         'month (1-12) day-of-week (0-7); each *, n, a-b, */n or a list, '
                         'e.g. ''*/5 * * * *'' or ''30 2 * * 1-5''';
    END IF;
    SELECT c.schedule INTO was FROM cron.job AS c
    WHERE c.jobname = job AND c.username = 'gstjobs_runner' FOR UPDATE;
    IF was IS DISTINCT FROM schedule THEN
        UPDATE cron.job AS c SET schedule = reschedule.schedule
        WHERE c.jobname = job AND c.username = 'gstjobs_runner';
        INSERT INTO gstjobs.audit_log (action, job, details, reason)
        VALUES ('reschedule', job, jsonb_build_object('old', jsonb_build_object('schedule', was),
                                                      'new', jsonb_build_object('schedule', schedule)),
                reason);
    END IF;
    RETURN jsonb_build_object('job', job, 'old_schedule', was, 'schedule', schedule,
                              'changed', was IS DISTINCT FROM schedule);
END
$$;
COMMENT ON FUNCTION gstjobs.reschedule(text, text, text) IS 'changes a job''s pg_cron schedule after checking it strictly; audited';

CREATE FUNCTION gstjobs.retry_notification(notification_id bigint, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous gstjobs.notifications;
BEGIN
    SELECT * INTO previous FROM gstjobs.notifications AS n WHERE n.id = notification_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no notification %', notification_id USING ERRCODE = 'undefined_object';
    END IF;
    IF previous.status NOT IN ('dead', 'failed') THEN
        RAISE EXCEPTION 'notification % is %, not dead or failed', notification_id, previous.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'only a dead or failed notification is re-queued';
    END IF;
    UPDATE gstjobs.notifications AS n
    SET status = 'pending', attempts = 0, next_attempt_at = now()
    WHERE n.id = notification_id;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('outbox.retry', jsonb_build_object('notification_id', notification_id,
            'old', jsonb_build_object('status', previous.status, 'attempts', previous.attempts,
                                      'last_error', previous.last_error),
            'new', jsonb_build_object('status', 'pending', 'attempts', 0)), reason);
    RETURN jsonb_build_object('id', notification_id, 'old_status', previous.status, 'status', 'pending');
END
$$;
COMMENT ON FUNCTION gstjobs.retry_notification(bigint, text) IS 're-queues a dead or failed notification with a fresh set of attempts; audited';

CREATE FUNCTION gstjobs.set_setting(key text, value text, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known gstjobs.setting_defaults;
    problem text;
    old text;
BEGIN
    SELECT * INTO known FROM gstjobs.setting_defaults AS d WHERE d.key = set_setting.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting %', quote_literal(left(key, 100))
            USING ERRCODE = 'undefined_object',
                  HINT = 'settings are: ' || (SELECT string_agg(d.key, ', ' ORDER BY d.key) FROM gstjobs.setting_defaults AS d);
    END IF;
    IF value IS NULL OR length(value) > 2000 THEN
        problem := 'a value is 0 to 2000 characters';
    ELSIF known.kind = 'positive' AND NOT (value ~ '^[0-9]{1,9}$' AND value::integer > 0) THEN
        problem := 'it must be a whole number above 0';
    ELSIF known.kind = 'count' AND value !~ '^[0-9]{1,9}$' THEN
        problem := 'it must be a whole number, 0 or more';
    ELSIF known.kind = 'port' AND NOT (value ~ '^[0-9]{1,5}$' AND value::integer BETWEEN 1 AND 65535) THEN
        problem := 'a port is a whole number from 1 to 65535';
    ELSIF known.kind = 'zone' AND NOT litigation.is_iana_timezone(value) THEN
        problem := 'it must be an IANA time zone such as Asia/Kolkata or Europe/London';
    ELSIF known.kind = 'tls' AND value NOT IN ('none', 'starttls', 'tls') THEN
        problem := 'it must be none, starttls or tls';
    ELSIF known.kind = 'email' AND value !~ '^[^@\s,]+@[^@\s,]+$' THEN
        problem := 'it must be one email address';
    ELSIF known.kind = 'emails' AND value <> ''
          AND EXISTS (SELECT FROM unnest(string_to_array(value, ',')) AS a
                      WHERE trim(a) !~ '^[^@\s,]+@[^@\s,]+$') THEN
        problem := 'it must be email addresses separated by commas';
    ELSIF known.kind = 'url' AND value <> '' AND value !~ '^https?://[^\s/$.?#][^\s]*$' THEN
        problem := 'it must be an http:// or https:// URL';
    ELSIF known.kind = 'host' AND value !~ '^[A-Za-z0-9.:\[\]-]{1,253}$' THEN
        problem := 'it must be a host name or address';
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid value for %: %', key, problem
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF known.kind = 'secret' THEN
        SELECT s.value INTO old FROM gstjobs.secrets AS s WHERE s.key = set_setting.key;
        INSERT INTO gstjobs.secrets AS s (key, value) VALUES (key, value)
        ON CONFLICT ON CONSTRAINT secrets_pkey
        DO UPDATE SET value = excluded.value, updated_at = now(), updated_by = session_user;
        -- the audit says that a secret changed, never what it was or is
        INSERT INTO gstjobs.audit_log (action, details, reason)
        VALUES ('config.set', jsonb_build_object('key', key, 'secret', true,
                                                 'was_set', old IS NOT NULL), reason);
        RETURN jsonb_build_object('key', key, 'value', '********');
    END IF;
    SELECT s.value INTO old FROM gstjobs.settings AS s WHERE s.key = set_setting.key;
    INSERT INTO gstjobs.settings AS s (key, value) VALUES (key, value)
    ON CONFLICT ON CONSTRAINT settings_pkey
    DO UPDATE SET value = excluded.value, updated_at = now(), updated_by = session_user;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('config.set', jsonb_build_object('key', key,
            'old', coalesce(old, known.default_value), 'new', value), reason);
    RETURN jsonb_build_object('key', key, 'old', coalesce(old, known.default_value), 'value', value);
END
$$;
COMMENT ON FUNCTION gstjobs.set_setting(text, text, text) IS 'changes a setting after checking its value; audited (secrets: only that they changed)';

CREATE FUNCTION gstjobs.secret(key text) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT s.value FROM gstjobs.secrets AS s WHERE s.key = secret.key);
COMMENT ON FUNCTION gstjobs.secret(text) IS 'a secret''s value, for the dispatcher only: granted to nobody';

CREATE FUNCTION gstjobs.doctor_facts() RETURNS TABLE (name text, ok boolean, detail text, fix text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- what `gstjobs doctor` checks in the server, including what operators may not read
    SELECT 'pg_cron preloaded', current_setting('cron.database_name', true) IS NOT NULL,
           coalesce('pg_cron ' || (SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'), 'not loaded'),
           'add pg_cron to shared_preload_libraries in postgresql.conf and restart the server'
    UNION ALL
    SELECT 'cron.database_name', current_setting('cron.database_name', true) = current_database(),
           coalesce(current_setting('cron.database_name', true), 'not set'),
           format('set cron.database_name = %L in postgresql.conf and restart', current_database())
    UNION ALL
    SELECT 'cron.use_background_workers', current_setting('cron.use_background_workers', true) = 'on',
           coalesce(current_setting('cron.use_background_workers', true), 'not set'),
           'set cron.use_background_workers = on (jobs then need no password or pg_hba entry) and restart'
    UNION ALL
    SELECT 'max_worker_processes', current_setting('max_worker_processes')::integer >= 20,
           current_setting('max_worker_processes'),
           'set max_worker_processes = 20 or more (pg_cron takes one per running job) and restart'
    UNION ALL
    SELECT 'pg_cron launcher', EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'),
           CASE WHEN EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher')
                THEN 'running' ELSE 'not running' END,
           'see the server log for pg_cron errors; the launcher starts with the server'
    UNION ALL
    SELECT 'plpython3u', EXISTS (SELECT FROM pg_extension WHERE extname = 'plpython3u'),
           coalesce('plpython3u ' || (SELECT extversion FROM pg_extension WHERE extname = 'plpython3u'), 'missing'),
           'install postgresql-plpython3-15 and run `alembic upgrade head`'
    UNION ALL
    SELECT 'runner not a superuser', NOT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = 'gstjobs_runner'), true),
           CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = 'gstjobs_runner') THEN 'gstjobs_runner is a superuser'
                ELSE 'gstjobs_runner is not a superuser' END,
           'ALTER ROLE gstjobs_runner NOSUPERUSER'
    UNION ALL
    SELECT 'job ' || j.name,
           c.jobid IS NOT NULL AND c.username = 'gstjobs_runner' AND c.database = current_database(),
           CASE WHEN c.jobid IS NULL THEN 'not scheduled'
                ELSE format('%s as %s in %s%s', c.schedule, c.username, c.database,
                            CASE WHEN c.active THEN '' ELSE ', paused' END) END,
           'run `alembic upgrade head`, which schedules every job as gstjobs_runner'
    FROM gstjobs.jobs AS j
    LEFT JOIN cron.job AS c ON c.jobname = j.name AND c.username = 'gstjobs_runner';
END;

RESET ROLE;

-- ------------------------------------------------------------------ PL/Python --------------
CREATE FUNCTION gstjobs.cron_problem(schedule text) RETURNS text
    LANGUAGE plpython3u IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $plpy$ health_check.cron_problem(schedule) $plpy$;
COMMENT ON FUNCTION gstjobs.cron_problem(text) IS 'why a cron text is not a valid 5-field schedule, or NULL when it is';
ALTER FUNCTION gstjobs.cron_problem(text) OWNER TO gstjobs_owner;

-- ------------------------------------------------------------------ privileges -------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gstjobs.set_active(text, boolean, text),
                          gstjobs.reschedule(text, text, text),
                          gstjobs.retry_notification(bigint, text),
                          gstjobs.set_setting(text, text, text),
                          gstjobs.doctor_facts(),
                          gstjobs.cron_problem(text)
    TO gstjobs_operator;
