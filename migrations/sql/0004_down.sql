-- Back to 0003: the guards of 0004 go; head's re-applied functions stay until the next
-- `alembic upgrade head` (docs/MIGRATIONS.md).

ALTER FUNCTION litigation.event_changed() SET search_path = pg_catalog;
ALTER FUNCTION litigation.calendar_changed() SET search_path = pg_catalog;

DROP TRIGGER checked ON gstjobs.settings;
DROP FUNCTION gstjobs.check_setting();
DROP TRIGGER append_only ON gstjobs.audit_log;
DROP TRIGGER append_only_no_truncate ON gstjobs.audit_log;
DROP FUNCTION gstjobs.keep_audit_log();

-- CASCADE: head's views that show these columns go with them
ALTER TABLE gstjobs.secrets DROP COLUMN endpoint CASCADE;
ALTER TABLE gstjobs.runs DROP COLUMN query_start CASCADE;

-- The role's privileges in this database go first (head's re-applied grants among them);
-- the role itself is kept while another database of the cluster still uses it.
-- The role is kept while another database uses it or a role of the DBA's is a member of it.
REVOKE ALL ON SCHEMA gstjobs FROM gstjobs_admin;
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_shdepend
        WHERE refclassid = 'pg_authid'::regclass
          AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_admin')
          AND dbid <> (SELECT oid FROM pg_database WHERE datname = current_database())
    ) OR EXISTS (
        SELECT FROM pg_auth_members AS m JOIN pg_roles AS member ON member.oid = m.member
        WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_admin')
          AND member.rolname NOT LIKE 'gstjobs\_%'
    ) THEN
        RAISE NOTICE 'role gstjobs_admin kept: another database, or a role of yours, uses it';
    ELSE
        DROP OWNED BY gstjobs_admin;
        DROP ROLE gstjobs_admin;
    END IF;
END
$$;
