-- Back to 0019: the runner's sessions take the server's and the database's settings again;
-- a value other than 0020's (the DBA's own) is kept, and so are 0020's while gstjobs in
-- another database of the cluster uses the role.
DO $$
DECLARE
    ours CONSTANT text[] := ARRAY['statement_timeout=0', 'default_transaction_isolation=read committed'];
    setting text;
BEGIN
    IF EXISTS (SELECT FROM pg_shdepend AS d
               JOIN pg_database AS db ON db.oid = d.dbid
               WHERE d.refclassid = 'pg_authid'::regclass
                 AND d.refobjid = 'gstjobs_runner'::regrole
                 AND db.datname <> current_database()) THEN
        RAISE NOTICE 'gstjobs_runner keeps statement_timeout 0 and READ COMMITTED: another database of this cluster uses the role';
        RETURN;
    END IF;
    FOREACH setting IN ARRAY ours LOOP
        IF EXISTS (SELECT FROM pg_db_role_setting AS s, unnest(s.setconfig) AS c
                   WHERE s.setrole = 'gstjobs_runner'::regrole AND s.setdatabase = 0 AND c = setting) THEN
            EXECUTE format('ALTER ROLE gstjobs_runner RESET %I', split_part(setting, '=', 1));
        END IF;
    END LOOP;
END
$$;
