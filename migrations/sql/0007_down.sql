-- Back to 0006: the firm's disabled state and the provisioning role go (the role is kept while
-- another database, or a role of the DBA's, uses it).
ALTER TABLE litigation.tenants DROP COLUMN disabled_at CASCADE;
REVOKE ALL ON SCHEMA gstjobs FROM gstjobs_provisioner;
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_shdepend
        WHERE refclassid = 'pg_authid'::regclass
          AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_provisioner')
          AND dbid <> (SELECT oid FROM pg_database WHERE datname = current_database())
    ) OR EXISTS (
        SELECT FROM pg_auth_members AS m JOIN pg_roles AS member ON member.oid = m.member
        WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_provisioner')
          AND member.rolname NOT LIKE 'gstjobs\_%'
    ) THEN
        RAISE NOTICE 'role gstjobs_provisioner kept: another database, or a role of yours, uses it';
    ELSE
        DROP OWNED BY gstjobs_provisioner;
        DROP ROLE gstjobs_provisioner;
    END IF;
END
$$;
