-- What an installation of gstjobs needs of the server and of the login that installs it, read
-- before anything is changed: by `alembic upgrade` (migrations/env.py) and by `gstjobs doctor
-- --preflight`. Readable by any login (no setting a non-superuser may not read). One row per
-- check: its name, whether it holds, what was found, the fix, and whether installing must stop.

-- name: preflight
WITH facts AS (
    SELECT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user) AS superuser,
           -- only these logins may read the server's settings below
           pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') AS reads_settings,
           current_user AS login,
           current_database() AS here,
           current_setting('server_version_num')::integer AS version,
           current_setting('server_version') AS version_text,
           -- read as set, not from pg_cron's launcher, which connects a moment after a start
           CASE WHEN pg_has_role(current_user, 'pg_read_all_settings', 'USAGE')
                THEN current_setting('shared_preload_libraries') ~ '(^|,)\s*pg_cron\s*(,|$)' END
               AS cron_preloaded,
           CASE WHEN pg_has_role(current_user, 'pg_read_all_settings', 'USAGE')
                THEN current_setting('cron.database_name', true) END AS cron_database,
           array(SELECT e.name FROM pg_available_extensions AS e
                 WHERE e.name IN ('pg_cron', 'plpython3u', 'jsonb_plpython3u')) AS available,
           current_setting('max_worker_processes')::integer AS workers
)
SELECT name, ok, detail, fix, blocking FROM facts, LATERAL (VALUES
    ('PostgreSQL 15 or later', version >= 150000, 'PostgreSQL ' || version_text,
     'install gstjobs into PostgreSQL 15 or later', true),
    ('a superuser installs it', superuser,
     format('connected as %s, %s', login, CASE WHEN superuser THEN 'a superuser' ELSE 'not a superuser' END),
     'connect as a superuser (e.g. postgres): the installation creates roles, extensions and functions in an untrusted language',
     true),
    ('pg_cron preloaded', cron_preloaded OR NOT reads_settings,
     CASE WHEN NOT reads_settings THEN 'cannot tell: this login may not read the server''s settings'
          WHEN cron_preloaded THEN 'in shared_preload_libraries, working in database ' || coalesce(cron_database, '(none)')
          ELSE 'pg_cron is not in shared_preload_libraries' END,
     'add pg_cron to shared_preload_libraries in postgresql.conf, set cron.database_name to the database gstjobs goes into, and restart the server',
     true),
    ('pg_cron works in this database', cron_database IS NULL OR cron_database = here,
     format('pg_cron works in database %s; this is %s', coalesce(cron_database, '(none)'), here),
     format('set cron.database_name = %L in postgresql.conf and restart, or install gstjobs into %s', here,
            coalesce(cron_database, 'the database pg_cron works in')),
     true),
    ('pg_cron installed on the server', 'pg_cron' = ANY (available),
     CASE WHEN 'pg_cron' = ANY (available) THEN 'available' ELSE 'missing' END,
     'install the Debian package postgresql-15-cron (apt-get install postgresql-15-cron)', true),
    ('plpython3u installed on the server', 'plpython3u' = ANY (available) AND 'jsonb_plpython3u' = ANY (available),
     CASE WHEN 'plpython3u' = ANY (available) THEN 'available' ELSE 'missing' END,
     'install the Debian package postgresql-plpython3-15 (apt-get install postgresql-plpython3-15)', true),
    ('max_worker_processes', workers >= 20, workers::text,
     'set max_worker_processes = 20 or more (pg_cron takes one per running job) and restart', false)
) AS checks (name, ok, detail, fix, blocking);
