-- Back to 0010: no timeouts, no cancel. A cancelled run is kept as failed, with its reason; the
-- timeout settings go, with a note of what was set.
SET ROLE gstjobs_owner;

INSERT INTO gstjobs.audit_log (action, details, reason)
SELECT 'config.remove', jsonb_build_object('key', s.key, 'value', s.value),
       'revision 0011 undone: no run timeouts before it'
FROM gstjobs.settings AS s
WHERE s.key LIKE 'timeout.%';
DELETE FROM gstjobs.settings WHERE key LIKE 'timeout.%';
ALTER TABLE gstjobs.settings DROP CONSTRAINT settings_key_check;
ALTER TABLE gstjobs.settings ADD CONSTRAINT settings_key_check
    CHECK (key ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$');

ALTER TABLE gstjobs.runs DROP CONSTRAINT runs_status_check;
UPDATE gstjobs.runs SET status = 'failed', error = coalesce(stop_reason, error)
WHERE status = 'cancelled';
ALTER TABLE gstjobs.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'crashed'));
ALTER TABLE gstjobs.runs DROP COLUMN stop, DROP COLUMN stop_reason, DROP COLUMN stop_requested_at,
    DROP COLUMN stop_requested_by CASCADE;

RESET ROLE;

REVOKE pg_signal_backend FROM gstjobs_owner;

-- the monitoring role goes (kept while another database, or a role of the DBA's, uses it)
REVOKE ALL ON SCHEMA gstjobs FROM gstjobs_monitor;
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_shdepend
        WHERE refclassid = 'pg_authid'::regclass
          AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_monitor')
          AND dbid <> (SELECT oid FROM pg_database WHERE datname = current_database())
    ) OR EXISTS (
        SELECT FROM pg_auth_members AS m JOIN pg_roles AS member ON member.oid = m.member
        WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = 'gstjobs_monitor')
          AND member.rolname NOT LIKE 'gstjobs\_%'
    ) THEN
        RAISE NOTICE 'role gstjobs_monitor kept: another database, or a role of yours, uses it';
    ELSE
        DROP OWNED BY gstjobs_monitor;
        DROP ROLE gstjobs_monitor;
    END IF;
END
$$;
