"""The database side of gstjobs: re-applying views, functions and jobs from sql/."""

import re
from importlib import resources
from typing import Any

import psycopg

from gstjobs.resources import checksum, render, sql_text

# The files of sql/ re-applied on every upgrade to head are those named NN_<domain>.sql, in
# the order of their names (`ls sql/` shows it): settings and templates, the run ledger, slots
# and the jobs' bodies that use them, deadlines, what operators may do, the views, and last the
# job registry and its schedules. queries.sql and generate.sql are not re-applied.
REAPPLIED = tuple(
    sorted(
        entry.name
        for entry in resources.files("gstjobs.sql").iterdir()
        if re.fullmatch(r"[0-9]{2}_[a-z_]+\.sql", entry.name)
    )
)

DROP_VIEWS_AND_ROUTINES = """
DO $$
DECLARE
    views text;
    routine regprocedure;
    dropped boolean;
BEGIN
    -- one statement: dropping a view one at a time would cascade to others still in the list
    SELECT 'DROP VIEW ' || string_agg(c.oid::regclass::text, ', ') || ' CASCADE' INTO views
    FROM pg_class AS c WHERE c.relnamespace = 'gstjobs'::regnamespace AND c.relkind = 'v';
    IF views IS NOT NULL THEN
        EXECUTE views;
    END IF;
    -- Routines may depend on one another (SQL-standard bodies record it): drop what nothing
    -- depends on, and again, until nothing more goes. No CASCADE: should a table ever depend
    -- on one of them, the re-create fails loudly instead of a constraint vanishing.
    LOOP
        dropped := false;
        FOR routine IN SELECT p.oid::regprocedure FROM pg_proc AS p
                       WHERE p.pronamespace = 'gstjobs'::regnamespace LOOP
            BEGIN
                EXECUTE format('DROP ROUTINE %s', routine);
                dropped := true;
            EXCEPTION WHEN dependent_objects_still_exist THEN
                NULL;
            END;
        END LOOP;
        EXIT WHEN NOT dropped;
    END LOOP;
END
$$;
"""


# The Alembic revision this version of gstjobs expects (a test keeps it equal to the head).
MIGRATIONS_HEAD = "0005"


def reapplied_sql() -> dict[str, str]:
    """Each re-applied file of sql/, rendered (PL/Python bodies inlined)."""
    return {name: render(sql_text(name)) for name in REAPPLIED}


def reapplied_checksums() -> dict[str, str]:
    """What gstjobs.schema_objects holds after an upgrade with this version of gstjobs."""
    return {name: checksum(text) for name, text in reapplied_sql().items()}


def apply_reapplied(conn: psycopg.Connection[Any]) -> None:
    """Drop the toolkit's views and routines and create them again from sql/.

    Dropping first means a function removed or re-signed in sql/ leaves no stale copy behind;
    the checksums recorded in gstjobs.schema_objects let `gstjobs doctor` spot drift.
    """
    conn.execute(DROP_VIEWS_AND_ROUTINES)
    # files renamed or removed since an earlier version leave no stale checksum behind
    conn.execute(
        "DELETE FROM gstjobs.schema_objects WHERE NOT (name = ANY (%s))", (list(REAPPLIED),)
    )
    for name, text in reapplied_sql().items():
        # No parameters: psycopg sends the file as one simple query, statements and all.
        conn.execute(text.encode())
        conn.execute(
            "INSERT INTO gstjobs.schema_objects (name, checksum) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
            (name, checksum(text)),
        )
