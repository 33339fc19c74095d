-- Bringing a firm in, and out (docs/INTEGRATION.md): a role for whoever provisions firms, and a
-- firm's disabled state, which the jobs respect (no new work for a disabled firm).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gstjobs_provisioner') THEN
        CREATE ROLE gstjobs_provisioner NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE gstjobs_provisioner IS 'gstjobs: may add, disable and enable firms (grant to the onboarding service or the people who do it)';
-- What it may call is granted with each re-applied function (sql/70_operations.sql).
GRANT USAGE ON SCHEMA gstjobs TO gstjobs_provisioner;

SET ROLE gstjobs_owner;
ALTER TABLE litigation.tenants ADD COLUMN disabled_at timestamptz;
COMMENT ON COLUMN litigation.tenants.disabled_at IS 'when the firm was disabled: no job does new work for it (gstjobs firm disable); NULL: active';
RESET ROLE;
