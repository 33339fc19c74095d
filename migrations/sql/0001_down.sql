-- Removes everything the baseline and the re-applied parts of sql/ created: the toolkit's cron
-- jobs, both schemas, the roles (when no other database still uses them) and the extensions
-- gstjobs itself created, except pg_cron: the running scheduler keeps the identity of its job
-- table from server start, so after a DROP and CREATE EXTENSION it would run stale jobs and
-- never see new ones until the server restarts. `DROP EXTENSION pg_cron` is left to the DBA.

DO $$
DECLARE
    job_id bigint;
BEGIN
    IF to_regclass('gstjobs.jobs') IS NOT NULL AND to_regclass('cron.job') IS NOT NULL THEN
        FOR job_id IN
            SELECT jobid FROM cron.job
            WHERE jobname IN (SELECT name FROM gstjobs.jobs) AND username = 'gstjobs_runner'
        LOOP
            PERFORM cron.unschedule(job_id);
            DELETE FROM cron.job_run_details WHERE jobid = job_id;
        END LOOP;
    END IF;
END
$$;

CREATE TEMPORARY TABLE gstjobs_extensions_to_drop AS
    SELECT name FROM gstjobs.installed_extensions;

DROP SCHEMA gstjobs CASCADE;
DROP SCHEMA litigation CASCADE;

REVOKE ALL ON cron.job, cron.job_run_details FROM gstjobs_owner;
REVOKE ALL ON SCHEMA cron FROM gstjobs_owner;
REVOKE pg_read_all_stats, pg_read_all_settings FROM gstjobs_owner;
-- gstjobs's own grant on Alembic's version table (doctor reads it as an operator), which
-- would otherwise keep the role in a cluster with this one database (corrected 2026-12-01)
DO $$
BEGIN
    IF to_regclass('public.gstjobs_alembic_version') IS NOT NULL THEN
        REVOKE ALL ON public.gstjobs_alembic_version FROM gstjobs_operator;
    END IF;
END
$$;

DO $$
DECLARE
    role_name text;
    extension_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['gstjobs_app', 'gstjobs_operator', 'gstjobs_runner', 'gstjobs_owner'] LOOP
        -- A role is shared by the cluster; keep it while anything else uses it: another
        -- database, privileges the DBA gave it on objects of theirs, or a role the DBA made a
        -- member of it (dropping the role would silently end that membership). Corrected
        -- 2026-12-01: before, only another database kept it.
        IF EXISTS (
            SELECT FROM pg_shdepend
            WHERE refclassid = 'pg_authid'::regclass
              AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = role_name)
        ) THEN
            RAISE NOTICE 'role % kept: another database of this cluster, or an object of yours, still uses it', role_name;
        ELSIF EXISTS (
            SELECT FROM pg_auth_members AS m JOIN pg_roles AS member ON member.oid = m.member
            WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = role_name)
              AND member.rolname NOT LIKE 'gstjobs\_%'
        ) THEN
            RAISE NOTICE 'role % kept: % of yours are members of it (REVOKE % FROM them, then DROP ROLE %, if you want it gone)',
                role_name,
                (SELECT string_agg(member.rolname, ', ' ORDER BY member.rolname)
                 FROM pg_auth_members AS m JOIN pg_roles AS member ON member.oid = m.member
                 WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = role_name)
                   AND member.rolname NOT LIKE 'gstjobs\_%'),
                role_name, role_name;
        ELSE
            EXECUTE format('DROP ROLE IF EXISTS %I', role_name);
        END IF;
    END LOOP;

    FOR extension_name IN SELECT name FROM gstjobs_extensions_to_drop LOOP
        IF extension_name = 'pg_cron' THEN
            RAISE NOTICE 'extension pg_cron kept: drop it yourself (DROP EXTENSION pg_cron) and restart the server if nothing else uses it';
        ELSE
            EXECUTE format('DROP EXTENSION IF EXISTS %I', extension_name);
        END IF;
    END LOOP;
END
$$;
