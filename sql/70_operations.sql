-- What operators may do, as SECURITY DEFINER functions with a fixed search_path: pause,
-- resume and reschedule jobs, retry a notification, change a setting. Each checks its input,
-- changes nothing when it refuses, and writes the audit log with the old and new values.
-- Re-applied on every upgrade to head.

SET ROLE gstjobs_owner;

CREATE OR REPLACE FUNCTION gstjobs.registered_job(job text) RETURNS text
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

CREATE OR REPLACE FUNCTION gstjobs.set_active(job text, active boolean, reason text DEFAULT NULL) RETURNS jsonb
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

-- Cancels the running runs of a job (each one-firm run too): each is asked to stop and its
-- statement cancelled (gstjobs.stop_run); the run ends cancelled, its batch under way rolled
-- back. Refused, changing nothing, when no run of the job is running.
CREATE OR REPLACE FUNCTION gstjobs.cancel_job(job text, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    registered gstjobs.jobs;
    cancelled jsonb;
BEGIN
    registered := gstjobs.job(cancel_job.job);
    IF length(cancel_job.reason) > 1000 THEN
        RAISE EXCEPTION 'reason is % characters long; at most 1000 are kept', length(cancel_job.reason)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'run_id', r.id, 'tenant_id', r.tenant_id, 'started_at', r.started_at,
               'signalled', gstjobs.stop_run(r.id, 'cancel',
                                             format('cancelled by %s%s', session_user, ': ' || cancel_job.reason)))
           ORDER BY r.id)
    INTO cancelled
    FROM gstjobs.runs AS r
    WHERE r.job = registered.name AND r.status = 'running';
    IF cancelled IS NULL THEN
        RAISE EXCEPTION 'no run of % is running', registered.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('gstjobs history %s shows its runs', registered.name);
    END IF;
    INSERT INTO gstjobs.audit_log (action, job, details, reason)
    VALUES ('cancel', registered.name, jsonb_build_object('runs', cancelled), cancel_job.reason);
    RETURN jsonb_build_object('job', registered.name, 'runs', cancelled);
END
$$;
COMMENT ON FUNCTION gstjobs.cancel_job(text, text) IS 'cancels the running runs of a job; audited';

CREATE OR REPLACE FUNCTION gstjobs.reschedule(job text, schedule text, reason text DEFAULT NULL) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION gstjobs.retry_notification(notification_id bigint, reason text DEFAULT NULL) RETURNS jsonb
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

-- Operators and admins: one change of one or more settings, checked whole before any is kept,
-- audited key by key (a secret: only that it changed). Who may change a key is its changed_by:
-- operator, admin (gstjobs_admin) or dba (a superuser). The login is session_user: inside this
-- SECURITY DEFINER function current_user is the owner.
CREATE OR REPLACE FUNCTION gstjobs.set_settings(changes jsonb, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    change record;
    known gstjobs.setting_defaults;
    problem text;
    old text;
    results jsonb := '[]';
    keys text[];
    secrets_set text[] := '{}';
BEGIN
    IF jsonb_typeof(changes) IS DISTINCT FROM 'object' OR changes = '{}' THEN
        RAISE EXCEPTION 'changes must be a JSON object of settings and their new values'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(k ORDER BY k) INTO keys FROM jsonb_object_keys(changes) AS k;
    FOR change IN SELECT c.key, c.value FROM jsonb_each(changes) AS c ORDER BY c.key LOOP
        known := gstjobs.setting_definition(change.key);
        IF known.changed_by = 'admin' AND NOT pg_has_role(session_user, 'gstjobs_admin', 'MEMBER') THEN
            RAISE EXCEPTION '% may be changed by members of gstjobs_admin only', change.key
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'where messages go, with which credentials, and how long history is kept are an administrator''s: GRANT gstjobs_admin TO the person who holds them';
        ELSIF known.changed_by = 'dba' AND NOT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = session_user) THEN
            RAISE EXCEPTION '% may be changed by a superuser only', change.key
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'it says which files of the database server gstjobs may read';
        END IF;
        IF jsonb_typeof(change.value) IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'invalid value for %: a value is a string', change.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        problem := gstjobs.setting_problem(change.key, change.value #>> '{}');
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'invalid value for %: %', change.key, problem
                USING ERRCODE = 'invalid_parameter_value';
        END IF;

        IF known.kind = 'secret' THEN
            SELECT s.value INTO old FROM gstjobs.secrets AS s WHERE s.key = change.key;
            INSERT INTO gstjobs.secrets AS s (key, value) VALUES (change.key, change.value #>> '{}')
            ON CONFLICT ON CONSTRAINT secrets_pkey
            DO UPDATE SET value = excluded.value, updated_at = now(), updated_by = session_user;
            secrets_set := secrets_set || change.key;
            -- the audit says that a secret changed, never what it was or is
            INSERT INTO gstjobs.audit_log (action, details, reason)
            VALUES ('config.set', jsonb_build_object('key', change.key, 'secret', true,
                                                     'was_set', old IS NOT NULL, 'change', keys), reason);
            results := results || jsonb_build_object('key', change.key, 'value', '********');
        ELSE
            SELECT s.value INTO old FROM gstjobs.settings AS s WHERE s.key = change.key;
            INSERT INTO gstjobs.settings AS s (key, value) VALUES (change.key, change.value #>> '{}')
            ON CONFLICT ON CONSTRAINT settings_pkey
            DO UPDATE SET value = excluded.value, updated_at = now(), updated_by = session_user;
            INSERT INTO gstjobs.audit_log (action, details, reason)
            VALUES ('config.set', jsonb_build_object('key', change.key,
                    'old', coalesce(old, known.default_value), 'new', change.value #>> '{}',
                    'change', keys), reason);
            results := results || jsonb_build_object('key', change.key,
                'old', coalesce(old, known.default_value), 'value', change.value #>> '{}');
        END IF;
    END LOOP;

    -- A secret set in this change is bound to the endpoint the whole change leaves in force;
    -- one not set again stays bound to its old endpoint, unusable while that is not in force.
    UPDATE gstjobs.secrets AS s SET endpoint = gstjobs.secret_endpoint(s.key)
    WHERE s.key = ANY (secrets_set);
    -- A credential never travels in clear (beyond this machine): refuse the whole change.
    SELECT p.in_clear INTO problem FROM gstjobs.delivery_problems(false) AS p;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'refused: %', problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN results;
END
$$;
COMMENT ON FUNCTION gstjobs.set_settings(jsonb, text) IS 'changes settings together after checking each value and who may change it; audited (secrets: only that they changed)';

-- Operators and admins: one setting (gstjobs.set_settings with one key).
CREATE OR REPLACE FUNCTION gstjobs.set_setting(key text, value text, reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN gstjobs.set_settings(jsonb_build_object(key, value), reason) -> 0;
COMMENT ON FUNCTION gstjobs.set_setting(text, text, text) IS 'changes one setting: gstjobs.set_settings with one key';

-- Provisioners: a new firm, with its zone and delivery preferences; checked by the table's
-- own constraints (a zone PostgreSQL knows, plain text, addresses the email package accepts).
-- The firm application then works on it with app.tenant_id set to its id
-- (docs/INTEGRATION.md). Audited.
CREATE OR REPLACE FUNCTION gstjobs.add_firm(
    name text, timezone text DEFAULT 'Asia/Kolkata', whatsapp_enabled boolean DEFAULT false,
    email_from text DEFAULT NULL, reply_to text DEFAULT NULL, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    firm litigation.tenants;
BEGIN
    IF NOT litigation.is_iana_timezone(add_firm.timezone) THEN
        RAISE EXCEPTION 'unknown time zone %', quote_literal(left(add_firm.timezone, 100))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'an IANA zone such as Asia/Kolkata or Europe/London';
    END IF;
    -- a retry after a lost reply must not make a second firm, nor two adds at once: the
    -- second waits here for the first to commit (firms' own writes to their row wait as
    -- long, moments), then sees its firm
    LOCK TABLE litigation.tenants IN SHARE ROW EXCLUSIVE MODE;
    SELECT t.* INTO firm FROM litigation.tenants AS t
    WHERE lower(btrim(t.name)) = lower(btrim(add_firm.name)) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a firm named % exists: firm %', quote_literal(firm.name), firm.id
            USING ERRCODE = 'duplicate_object',
                  HINT = 'gstjobs firm list shows it; another firm needs another name';
    END IF;
    -- firms inserted with their own ids (an import) leave the id sequence behind: catch it up
    PERFORM setval(ids, max(t.id))
    FROM litigation.tenants AS t, CAST(pg_get_serial_sequence('litigation.tenants', 'id') AS regclass) AS ids
    GROUP BY ids
    HAVING max(t.id) > coalesce(pg_sequence_last_value(ids), 0);
    INSERT INTO litigation.tenants AS t (name, timezone, whatsapp_enabled, email_from, reply_to)
    VALUES (add_firm.name, add_firm.timezone, add_firm.whatsapp_enabled, add_firm.email_from,
            add_firm.reply_to)
    RETURNING * INTO firm;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('firm.add', jsonb_build_object('firm_id', firm.id, 'name', firm.name,
                                           'timezone', firm.timezone::text), add_firm.reason);
    RETURN jsonb_build_object('id', firm.id, 'name', firm.name, 'timezone', firm.timezone::text,
                              'whatsapp_enabled', firm.whatsapp_enabled);
END
$$;
COMMENT ON FUNCTION gstjobs.add_firm(text, text, boolean, text, text, text) IS 'adds a firm; provisioners only, audited';

-- Provisioners: a firm disabled gets no new work from any job (its sla-check batches and
-- local-time slots are skipped), its data kept; enabled again, it does. Audited.
CREATE OR REPLACE FUNCTION gstjobs.set_firm_disabled(firm_id bigint, disabled boolean, reason text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was timestamptz;
BEGIN
    SELECT t.disabled_at INTO was FROM litigation.tenants AS t WHERE t.id = firm_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no firm %', firm_id
            USING ERRCODE = 'undefined_object', HINT = 'gstjobs firm list shows the firms';
    END IF;
    IF (was IS NOT NULL) IS DISTINCT FROM disabled THEN
        UPDATE litigation.tenants AS t
        SET disabled_at = CASE WHEN disabled THEN now() END WHERE t.id = firm_id;
        INSERT INTO gstjobs.audit_log (action, details, reason)
        VALUES (CASE WHEN disabled THEN 'firm.disable' ELSE 'firm.enable' END,
                jsonb_build_object('firm_id', firm_id), reason);
    END IF;
    RETURN jsonb_build_object('id', firm_id, 'disabled', disabled,
                              'changed', (was IS NOT NULL) IS DISTINCT FROM disabled);
END
$$;
COMMENT ON FUNCTION gstjobs.set_firm_disabled(bigint, boolean, text) IS 'disables (true) or enables (false) a firm; provisioners only, audited';

-- Owner only (dispatch, doctor, health-check): why this database may not send: it is a copy
-- (restored onto another server, or under another name) of the one gstjobs was installed in.
CREATE OR REPLACE FUNCTION gstjobs.installation_problem() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT format('this database is a copy: gstjobs was installed in database %s on the server '
                  'with system identifier %s, and this is database %s on %s; nothing is sent '
                  'until an administrator confirms this copy is production',
                  i.database_name, i.system_identifier, current_database(), s.system_identifier)
    FROM gstjobs.installation AS i, pg_control_system() AS s
    WHERE (i.system_identifier, i.database_name) IS DISTINCT FROM (s.system_identifier, current_database()));
COMMENT ON FUNCTION gstjobs.installation_problem() IS 'why this database is a copy that must not send, or NULL';

-- Operators and admins may call it; only members of gstjobs_admin may confirm: it decides that
-- messages go out from this database. Audited.
CREATE OR REPLACE FUNCTION gstjobs.adopt_installation(reason text DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was gstjobs.installation;
    here bigint := (SELECT s.system_identifier FROM pg_control_system() AS s);
BEGIN
    IF NOT pg_has_role(session_user, 'gstjobs_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'confirming this database as production is for members of gstjobs_admin only'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'it decides that messages go out from this database';
    END IF;
    SELECT * INTO was FROM gstjobs.installation;
    INSERT INTO gstjobs.installation AS i (system_identifier, database_name)
    VALUES (here, current_database())
    ON CONFLICT (singleton) DO UPDATE
    SET system_identifier = excluded.system_identifier, database_name = excluded.database_name,
        adopted_at = now(), adopted_by = session_user;
    INSERT INTO gstjobs.audit_log (action, details, reason)
    VALUES ('installation.adopt',
            jsonb_build_object('old', jsonb_build_object('system_identifier', was.system_identifier::text,
                                                         'database', was.database_name),
                               'new', jsonb_build_object('system_identifier', here::text,
                                                         'database', current_database())),
            reason);
    RETURN jsonb_build_object('database', current_database(), 'system_identifier', here::text,
                              'was_a_copy', (was.system_identifier, was.database_name)
                                            IS DISTINCT FROM (here, current_database()));
END
$$;
COMMENT ON FUNCTION gstjobs.adopt_installation(text) IS 'confirms this database as the production one: a copy starts sending; admins only, audited';

CREATE OR REPLACE FUNCTION gstjobs.doctor_facts() RETURNS TABLE (name text, ok boolean, detail text, fix text)
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
    LEFT JOIN cron.job AS c ON c.jobname = j.name AND c.username = 'gstjobs_runner'
    UNION ALL
    -- limits added to tables that already held rows breaking them stay NOT VALID (revision
    -- 0005): new writes are checked, the old rows wait for someone to correct them
    SELECT 'firm data within limits', NOT EXISTS (
               SELECT FROM pg_constraint AS c
               WHERE c.connamespace = 'litigation'::regnamespace AND c.contype = 'c'
                 AND NOT c.convalidated),
           coalesce((SELECT 'rows stored before these limits break them: '
                            || string_agg(c.conrelid::regclass || ' ' || c.conname, ', ' ORDER BY c.conname)
                     FROM pg_constraint AS c
                     WHERE c.connamespace = 'litigation'::regnamespace AND c.contype = 'c'
                       AND NOT c.convalidated),
                    'every limit holds for every row'),
           'correct those rows (docs/JOBS.md, "Limits"), then ALTER TABLE ... VALIDATE CONSTRAINT ...'
    UNION ALL
    SELECT 'settings valid', NOT EXISTS (SELECT FROM gstjobs.configuration AS c WHERE c.problem IS NOT NULL),
           coalesce((SELECT string_agg(c.key || ': ' || c.problem, '; ' ORDER BY c.key)
                     FROM gstjobs.configuration AS c WHERE c.problem IS NOT NULL),
                    'every setting is valid'),
           'set a valid value (gstjobs config set KEY VALUE; gstjobs config list shows each problem)'
    UNION ALL
    SELECT 'production copy', gstjobs.installation_problem() IS NULL,
           coalesce(gstjobs.installation_problem(), 'this is the database gstjobs was installed in'),
           'if this is the production database (moved to a new server, a switch-over), an administrator '
           'runs `gstjobs doctor --adopt`; if it is a staging or test copy, leave it: it sends nothing'
    UNION ALL
    SELECT 'delivery possible', p.email IS NULL AND p.whatsapp IS NULL,
           coalesce(concat_ws('; ', 'email: ' || p.email, 'WhatsApp: ' || p.whatsapp), 'nothing stands in the way'),
           'as the detail says; a secret set for another endpoint is set again with the endpoint (gstjobs config set smtp.host H smtp.password -)'
    FROM gstjobs.delivery_problems(false) AS p;
END;

RESET ROLE;

-- ------------------------------------------------------------------ PL/Python --------------
CREATE OR REPLACE FUNCTION gstjobs.cron_problem(schedule text) RETURNS text
    LANGUAGE plpython3u IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $plpy$ health_check.cron_problem(schedule) $plpy$;
COMMENT ON FUNCTION gstjobs.cron_problem(text) IS 'why a cron text is not a valid 5-field schedule, or NULL when it is';
ALTER FUNCTION gstjobs.cron_problem(text) OWNER TO gstjobs_owner;

-- Operators and the metrics login (monitoring/): each scheduled job's ticks in the last 24 h
-- against its schedule, and the mean time between ticks.
CREATE OR REPLACE FUNCTION gstjobs.schedule_facts(
    OUT job text, OUT expected_ticks integer, OUT ticks integer, OUT missed_ticks integer,
    OUT interval_seconds double precision)
    RETURNS SETOF record
    LANGUAGE plpython3u STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $plpy$ health_check.schedule_facts() $plpy$;
COMMENT ON FUNCTION gstjobs.schedule_facts() IS
    'each scheduled job''s ticks in the last 24 h against its schedule, and the mean time between ticks';
ALTER FUNCTION gstjobs.schedule_facts() OWNER TO gstjobs_owner;

-- ------------------------------------------------------------------ privileges -------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gstjobs FROM PUBLIC;
-- Operators pause, resume, reschedule, retry and read the doctor's facts; each function checks
-- its input and audits what it changed.
GRANT EXECUTE ON FUNCTION gstjobs.set_active(text, boolean, text), gstjobs.cancel_job(text, text),
                          gstjobs.reschedule(text, text, text),
                          gstjobs.retry_notification(bigint, text),
                          gstjobs.doctor_facts(),
                          gstjobs.cron_problem(text),
                          gstjobs.schedule_facts()
    TO gstjobs_operator;
-- The metrics login reads the job metrics view, which asks this (sql/80_views.sql).
GRANT EXECUTE ON FUNCTION gstjobs.schedule_facts() TO gstjobs_monitor;
-- Settings: operators and admins; each key says which of them may change it (set_settings).
GRANT EXECUTE ON FUNCTION gstjobs.set_settings(jsonb, text), gstjobs.set_setting(text, text, text)
    TO gstjobs_operator, gstjobs_admin;
-- Firms: added, disabled and enabled by provisioners only.
GRANT EXECUTE ON FUNCTION gstjobs.add_firm(text, text, boolean, text, text, text),
                          gstjobs.set_firm_disabled(bigint, boolean, text)
    TO gstjobs_provisioner;
-- Confirming a copy as production: callable by both, allowed for admins only (checked inside).
GRANT EXECUTE ON FUNCTION gstjobs.adopt_installation(text) TO gstjobs_operator, gstjobs_admin;
