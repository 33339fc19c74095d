-- Least privilege (docs/SECURITY.md): who may change where secrets go, a run guard nobody
-- else can take, an audit log that only grows, settings checked where they are stored.

-- ---------------------------------------------------------------- roles --------------------
-- Endpoints and secrets of delivery (smtp.*, whatsapp.*) and the retention of history are
-- changed by members of gstjobs_admin only: an operator who could point smtp.host at a
-- listener of their own could collect the password, and one who could shorten retention could
-- erase the record of what they did. Roles are cluster-wide: another database may have it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gstjobs_admin') THEN
        CREATE ROLE gstjobs_admin NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE gstjobs_admin IS 'gstjobs: may change delivery endpoints, secrets and retention (grant to the few who hold the credentials)';
-- Who may call what is granted with each re-applied function (sql/70_operations.sql).
GRANT USAGE ON SCHEMA gstjobs TO gstjobs_admin;

SET ROLE gstjobs_owner;

-- ---------------------------------------------------------------- the run guard ------------
-- A run is in progress while the backend that started it is still running the statement that
-- started it (the CALL of gstjobs.run_job, whose commits do not change its start): with
-- backend_pid and backend_start, this tells a live run from one whose session died or moved
-- on. The running rows of gstjobs.runs are the job's guard; only the owner writes them, so no
-- other session can take or hold it (an advisory lock is open to every login).
ALTER TABLE gstjobs.runs ADD COLUMN query_start timestamptz;
COMMENT ON COLUMN gstjobs.runs.query_start IS 'start of the statement running the run: with backend_pid and backend_start, what tells a live run from a dead one';

-- ---------------------------------------------------------------- secrets ------------------
-- A secret is bound to the endpoint it was set for (gstjobs.secret_endpoint): changing the
-- SMTP server, port, login, TLS or CA (or the WhatsApp URL) without setting the secret again
-- leaves it unusable, so it is never sent anywhere else. Rows from before this revision are
-- bound to the endpoint in force at the next `upgrade head` (sql/10_settings.sql).
ALTER TABLE gstjobs.secrets ADD COLUMN endpoint text;
COMMENT ON COLUMN gstjobs.secrets.endpoint IS 'the endpoint the secret was set for; it is used only while the configured endpoint is this one';

-- ---------------------------------------------------------------- the audit log ------------
-- Append-only for every role, the owner included: no row is changed, and a row is deleted
-- only once it is older than retention.audit_days (never less than a year), which is what
-- purge-history does. The retention is read through gstjobs.setting (re-applied), by name at
-- run time; a value that cannot be read refuses the delete.
CREATE FUNCTION gstjobs.keep_audit_log() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.at < now() - greatest(
            gstjobs.setting('retention.audit_days')::integer, 365) * interval '1 day' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Rows are deleted only by purge-history, once older than retention.audit_days.';
END
$$;
COMMENT ON FUNCTION gstjobs.keep_audit_log() IS 'refuses every change of the audit log but the deletion of rows past retention';
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON gstjobs.audit_log
    FOR EACH ROW EXECUTE FUNCTION gstjobs.keep_audit_log();
CREATE TRIGGER append_only_no_truncate BEFORE TRUNCATE ON gstjobs.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gstjobs.keep_audit_log();

-- ---------------------------------------------------------------- settings -----------------
-- Every value is checked where it is stored, whoever writes it: gstjobs.set_settings, or a
-- DBA writing the table. The rules are gstjobs.setting_problem's (re-applied, plpy/settings.py),
-- called by name at run time.
CREATE FUNCTION gstjobs.check_setting() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := gstjobs.setting_problem(NEW.key, NEW.value);
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid value for %: %', NEW.key, problem
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION gstjobs.check_setting() IS 'refuses a setting value that gstjobs.setting_problem finds wrong';
CREATE TRIGGER checked BEFORE INSERT OR UPDATE ON gstjobs.settings
    FOR EACH ROW EXECUTE FUNCTION gstjobs.check_setting();

-- ---------------------------------------------------------------- search_path --------------
-- Every SECURITY DEFINER function names pg_temp last in its search_path, so a caller's
-- temporary objects are never found before the catalog's (0002 named pg_catalog only, which
-- leaves pg_temp searched first for tables and types).
ALTER FUNCTION litigation.event_changed() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION litigation.calendar_changed() SET search_path = pg_catalog, pg_temp;

RESET ROLE;
