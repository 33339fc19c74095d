"""The database side of gstjobs: re-applying views, functions and jobs from sql/."""

import re
from importlib import resources
from typing import Any

import psycopg

from gstjobs.resources import checksum, named_queries, render, sql_text

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

# The Alembic revision this version of gstjobs expects (a test keeps it equal to the head).
MIGRATIONS_HEAD = "0006"


def reapplied_sql() -> dict[str, str]:
    """Each re-applied file of sql/, rendered (PL/Python bodies inlined)."""
    return {name: render(sql_text(name)) for name in REAPPLIED}


def reapplied_checksums() -> dict[str, str]:
    """What gstjobs.schema_objects holds after an upgrade with this version of gstjobs."""
    return {name: checksum(text) for name, text in reapplied_sql().items()}


def apply_reapplied(conn: psycopg.Connection[Any]) -> None:
    """Create or replace the toolkit's views and routines from sql/, then drop those sql/ no
    longer defines.

    In place, not dropped and created again: a view or function of the DBA's built on
    gstjobs's, and the grants others gave on them, survive the upgrade. What is dropped (a
    function removed or re-signed) is dropped without CASCADE, after checking that nothing
    outside gstjobs depends on it (the upgrade stops, naming what does). A view or function
    whose shape changes (columns, return type) is dropped by the revision that changes it.
    The checksums recorded in gstjobs.schema_objects let `gstjobs doctor` spot drift.
    """
    steps = named_queries("reapply.sql")
    conn.execute(steps["record"].encode())
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
    conn.execute(steps["drop-stale"].encode())
