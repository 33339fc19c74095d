-- A safe first start (docs/OPERATIONS.md): this installation's identity, so that a copy of
-- the database (restored onto another server, or under another name) sends nothing until an
-- administrator confirms it is the production one; and email waits until its server is set.

SET ROLE gstjobs_owner;
CREATE TABLE gstjobs.installation (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- pg_control_system(): the cluster's, which a restore onto another server changes
    system_identifier  bigint NOT NULL,
    database_name      name NOT NULL,
    adopted_at         timestamptz NOT NULL DEFAULT now(),
    adopted_by         text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE gstjobs.installation IS 'where gstjobs was installed or last confirmed as production: a database elsewhere is a copy and sends nothing';
RESET ROLE;

INSERT INTO gstjobs.installation (system_identifier, database_name)
    SELECT system_identifier, current_database() FROM pg_control_system();

-- smtp.host's default is now empty (nothing is sent until an administrator sets it). An
-- installation that has been sending email through the old default, localhost, keeps it.
-- (The settings' check, a re-applied function, may not exist yet in this upgrade: the value
-- is the old default, valid by every rule.)
ALTER TABLE gstjobs.settings DISABLE TRIGGER checked;
INSERT INTO gstjobs.settings (key, value, updated_by)
    SELECT 'smtp.host', 'localhost', 'migration 0006'
    WHERE NOT EXISTS (SELECT FROM gstjobs.settings WHERE key = 'smtp.host')
      AND EXISTS (SELECT FROM gstjobs.notifications WHERE channel = 'email' AND status = 'sent');
ALTER TABLE gstjobs.settings ENABLE TRIGGER checked;
