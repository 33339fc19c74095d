-- Before `alembic downgrade base` removes gstjobs (migrations/env.py): say what is wrong before
-- changing anything. Nothing outside gstjobs may depend on what it would drop, and the firms'
-- data goes only when the DBA says so (-x drop-data=yes, passed here as gstjobs.drop_data).

-- name: refuse-removal
DO $$
DECLARE
    outside text;
    firms bigint;
    rows_held text;
BEGIN
    -- objects outside schemas gstjobs and litigation that depend on something in them: a
    -- foreign key to a firm table, a view or function on a gstjobs view, a trigger, a column's
    -- type or default (through its table), a role's privileges are not dependencies here
    SELECT string_agg(DISTINCT format('%s (depends on %s)', d.dependent, d.on_object), '; ')
    INTO outside
    FROM (
        SELECT coalesce(CASE WHEN rule_view.oid IS NOT NULL THEN format('view %I.%I', rule_view.relnamespace::regnamespace, rule_view.relname) END,
                        pg_describe_object(dep.classid, dep.objid, dep.objsubid)) AS dependent,
               pg_describe_object(dep.refclassid, dep.refobjid, 0) AS on_object,
               coalesce(rule_view.relnamespace, trigger_table.relnamespace, policy_table.relnamespace,
                        constraint_table.relnamespace, default_table.relnamespace, p.pronamespace,
                        c.relnamespace, ty.typnamespace,
                        (pg_identify_object(dep.classid, dep.objid, dep.objsubid)).schema::regnamespace)
                   AS dependent_schema
        FROM pg_depend AS dep
        LEFT JOIN pg_rewrite AS r ON dep.classid = 'pg_rewrite'::regclass AND r.oid = dep.objid
        LEFT JOIN pg_class AS rule_view ON rule_view.oid = r.ev_class
        LEFT JOIN pg_trigger AS t ON dep.classid = 'pg_trigger'::regclass AND t.oid = dep.objid
        LEFT JOIN pg_class AS trigger_table ON trigger_table.oid = t.tgrelid
        LEFT JOIN pg_policy AS pol ON dep.classid = 'pg_policy'::regclass AND pol.oid = dep.objid
        LEFT JOIN pg_class AS policy_table ON policy_table.oid = pol.polrelid
        LEFT JOIN pg_constraint AS con ON dep.classid = 'pg_constraint'::regclass AND con.oid = dep.objid
        LEFT JOIN pg_class AS constraint_table ON constraint_table.oid = con.conrelid
        LEFT JOIN pg_attrdef AS ad ON dep.classid = 'pg_attrdef'::regclass AND ad.oid = dep.objid
        LEFT JOIN pg_class AS default_table ON default_table.oid = ad.adrelid
        LEFT JOIN pg_proc AS p ON dep.classid = 'pg_proc'::regclass AND p.oid = dep.objid
        LEFT JOIN pg_class AS c ON dep.classid = 'pg_class'::regclass AND c.oid = dep.objid
        LEFT JOIN pg_type AS ty ON dep.classid = 'pg_type'::regclass AND ty.oid = dep.objid
        WHERE dep.deptype = 'n'
          AND (SELECT coalesce(rc.relnamespace, rp.pronamespace, rt.typnamespace)
               FROM (SELECT) AS one
               LEFT JOIN pg_class AS rc ON dep.refclassid = 'pg_class'::regclass AND rc.oid = dep.refobjid
               LEFT JOIN pg_proc AS rp ON dep.refclassid = 'pg_proc'::regclass AND rp.oid = dep.refobjid
               LEFT JOIN pg_type AS rt ON dep.refclassid = 'pg_type'::regclass AND rt.oid = dep.refobjid)
              IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)
    ) AS d
    WHERE d.dependent_schema IS NULL
       OR d.dependent_schema NOT IN ('gstjobs'::regnamespace, 'litigation'::regnamespace);
    IF outside IS NOT NULL THEN
        RAISE EXCEPTION 'objects of yours depend on gstjobs: %', outside
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'drop them, or make them not use gstjobs''s tables and views, then remove '
                         'gstjobs; nothing was changed';
    END IF;

    SELECT count(*) INTO firms FROM litigation.tenants;
    IF firms > 0 AND coalesce(current_setting('gstjobs.drop_data', true), '') <> 'yes' THEN
        SELECT string_agg(format('%s %s', n, label), ', ') INTO rows_held
        FROM (VALUES ((SELECT count(*) FROM litigation.cases), 'cases'),
                     ((SELECT count(*) FROM litigation.tasks), 'tasks'),
                     ((SELECT count(*) FROM litigation.hearings), 'hearings'),
                     ((SELECT count(*) FROM litigation.deadlines), 'deadlines')) AS held (n, label);
        RAISE EXCEPTION 'removing gstjobs would delete the data of % firm(s) (%)', firms, rows_held
            USING ERRCODE = 'object_in_use',
                  HINT = 'back it up (pg_dump --schema=litigation), then say so: '
                         'alembic -x drop-data=yes downgrade base; nothing was changed';
    END IF;
END
$$;
