-- The steps around re-applying the NN_*.sql files at an upgrade to head (cli/gstjobs/schema.py):
-- note what exists and what the files create, then drop what they no longer define. All of it
-- in the upgrade's one transaction, by the migrating superuser (an event trigger needs one).

-- name: record
-- What exists now (each view and routine of schema gstjobs), and, until drop-stale, each one
-- the files create (CREATE OR REPLACE included), noted by a temporary event trigger.
CREATE TEMPORARY TABLE gstjobs_reapplied_before ON COMMIT DROP AS
    SELECT 'routine' AS kind, p.oid FROM pg_proc AS p WHERE p.pronamespace = 'gstjobs'::regnamespace
    UNION ALL
    SELECT 'view', c.oid FROM pg_class AS c
    WHERE c.relnamespace = 'gstjobs'::regnamespace AND c.relkind = 'v';
CREATE TEMPORARY TABLE gstjobs_reapplied (objid oid) ON COMMIT DROP;
-- SECURITY DEFINER: the files run much of themselves as gstjobs_owner, who may not write this
-- session's temporary table; the function is temporary too, and gone with the transaction.
CREATE FUNCTION pg_temp.gstjobs_note_reapplied() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pg_temp.gstjobs_reapplied
        SELECT objid FROM pg_event_trigger_ddl_commands() WHERE schema_name = 'gstjobs';
END
$$;
CREATE EVENT TRIGGER gstjobs_reapplying ON ddl_command_end
    WHEN TAG IN ('CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE VIEW')
    EXECUTE FUNCTION pg_temp.gstjobs_note_reapplied();

-- name: drop-stale
-- The views and routines the files no longer define are dropped, without CASCADE, unless
-- something outside schema gstjobs depends on one: then stop, naming it, changing nothing.
-- (Routines created by a revision, such as a table's trigger function, are not in the files:
-- what depends on them is gstjobs's own, so they stay.)
DROP EVENT TRIGGER gstjobs_reapplying;
DO $$
DECLARE
    stale_views text;
    outside text;
    routine regprocedure;
    dropped boolean;
BEGIN
    CREATE TEMPORARY TABLE gstjobs_stale ON COMMIT DROP AS
        SELECT b.kind, b.oid FROM gstjobs_reapplied_before AS b
        WHERE NOT EXISTS (SELECT FROM gstjobs_reapplied AS r WHERE r.objid = b.oid)
          AND (EXISTS (SELECT FROM pg_proc AS p WHERE p.oid = b.oid)
               OR EXISTS (SELECT FROM pg_class AS c WHERE c.oid = b.oid));
    -- What depends on a stale object, from outside schema gstjobs: a DBA's view (through its
    -- rule), function, trigger or constraint (through its table): never dropped with it.
    SELECT string_agg(DISTINCT format('%s (depends on %s)', d.dependent,
                                      pg_describe_object(d.refclassid, d.refobjid, 0)), '; ')
    INTO outside
    FROM (
        SELECT dep.refclassid, dep.refobjid,
               coalesce(CASE WHEN rule_view.oid IS NOT NULL THEN format('view %I.%I', rule_view.relnamespace::regnamespace, rule_view.relname) END,
                        pg_describe_object(dep.classid, dep.objid, dep.objsubid)) AS dependent,
               coalesce(rule_view.relnamespace, trigger_table.relnamespace, policy_table.relnamespace,
                        constraint_table.relnamespace, p.pronamespace, c.relnamespace,
                        (pg_identify_object(dep.classid, dep.objid, dep.objsubid)).schema::regnamespace)
                   AS dependent_schema,
               coalesce(rule_view.oid, dep.objid) AS dependent_oid
        FROM gstjobs_stale AS s
        JOIN pg_depend AS dep
          ON dep.refobjid = s.oid AND dep.deptype = 'n'
         AND dep.refclassid = CASE s.kind WHEN 'view' THEN 'pg_class'::regclass ELSE 'pg_proc'::regclass END
        LEFT JOIN pg_rewrite AS r ON dep.classid = 'pg_rewrite'::regclass AND r.oid = dep.objid
        LEFT JOIN pg_class AS rule_view ON rule_view.oid = r.ev_class
        LEFT JOIN pg_trigger AS t ON dep.classid = 'pg_trigger'::regclass AND t.oid = dep.objid
        LEFT JOIN pg_class AS trigger_table ON trigger_table.oid = t.tgrelid
        LEFT JOIN pg_policy AS pol ON dep.classid = 'pg_policy'::regclass AND pol.oid = dep.objid
        LEFT JOIN pg_class AS policy_table ON policy_table.oid = pol.polrelid
        LEFT JOIN pg_constraint AS con ON dep.classid = 'pg_constraint'::regclass AND con.oid = dep.objid
        LEFT JOIN pg_class AS constraint_table ON constraint_table.oid = con.conrelid
        LEFT JOIN pg_proc AS p ON dep.classid = 'pg_proc'::regclass AND p.oid = dep.objid
        LEFT JOIN pg_class AS c ON dep.classid = 'pg_class'::regclass AND c.oid = dep.objid
    ) AS d
    WHERE d.dependent_schema IS DISTINCT FROM 'gstjobs'::regnamespace
      AND NOT EXISTS (SELECT FROM gstjobs_stale AS t WHERE t.oid = d.dependent_oid);
    IF outside IS NOT NULL THEN
        RAISE EXCEPTION 'this version of gstjobs no longer has objects that objects of yours depend on: %', outside
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'drop those objects (or make them not use gstjobs''s), upgrade, and create '
                         'them again on the views gstjobs has now (docs/OPERATIONS.md); nothing was changed';
    END IF;
    -- the stale views together (one may be built on another), then the stale routines, each
    -- once nothing stale depends on it any more; no CASCADE anywhere
    SELECT string_agg(s.oid::regclass::text, ', ') INTO stale_views
    FROM gstjobs_stale AS s WHERE s.kind = 'view';
    IF stale_views IS NOT NULL THEN
        EXECUTE 'DROP VIEW ' || stale_views;
    END IF;
    LOOP
        dropped := false;
        FOR routine IN SELECT s.oid::regprocedure FROM gstjobs_stale AS s
                       WHERE s.kind = 'routine'
                         AND EXISTS (SELECT FROM pg_proc AS p WHERE p.oid = s.oid) LOOP
            BEGIN
                EXECUTE format('DROP ROUTINE %s', routine);
                dropped := true;
            EXCEPTION WHEN dependent_objects_still_exist THEN
                NULL;  -- a routine of a revision, used by gstjobs's own tables (a trigger)
            END;
        END LOOP;
        EXIT WHEN NOT dropped;
    END LOOP;
END
$$;
