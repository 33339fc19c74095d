-- pg_cron starts each run in a session of gstjobs_runner, which takes the server's and the
-- database's settings. Two of a DBA's usual ones would break the runs:
-- - statement_timeout (for the firms' queries) counts the whole CALL of a run, across its
--   commits: a dispatch run sending for most of a minute was cut short mid-send, and so would
--   be the analytics of a large firm base. A run stops at its job's own timeout (setting
--   timeout.<job>), which says what stopped it and rolls back only its last batch.
-- - default_transaction_isolation = serializable: the jobs claim and guard with row locks and
--   SKIP LOCKED, written for READ COMMITTED; under SERIALIZABLE, runs beside each other or
--   beside the firms' writes fail with serialization errors.
-- A setting the DBA gave the role already is kept. One for the role in a database (ALTER ROLE
-- gstjobs_runner IN DATABASE ... SET ...) takes precedence over these.
DO $$
DECLARE
    wanted CONSTANT text[] := ARRAY['statement_timeout=0', 'default_transaction_isolation=read committed'];
    setting text;
    name text;
BEGIN
    FOREACH setting IN ARRAY wanted LOOP
        name := split_part(setting, '=', 1);
        IF EXISTS (SELECT FROM pg_db_role_setting AS s, unnest(s.setconfig) AS c
                   WHERE s.setrole = 'gstjobs_runner'::regrole AND s.setdatabase = 0
                     AND c LIKE name || '=%') THEN
            RAISE NOTICE 'gstjobs_runner''s % is set already: kept', name;
        ELSE
            EXECUTE format('ALTER ROLE gstjobs_runner SET %I = %L', name, split_part(setting, '=', 2));
        END IF;
    END LOOP;
END
$$;
