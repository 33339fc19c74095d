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
MIGRATIONS_HEAD = "0020"


def reapplied_sql() -> dict[str, str]:
    """Each re-applied file of sql/, rendered (PL/Python bodies inlined)."""
    return {name: render(sql_text(name)) for name in REAPPLIED}


def reapplied_checksums() -> dict[str, str]:
    """What gstjobs.schema_objects holds after an upgrade with this version of gstjobs."""
    return {name: checksum(text) for name, text in reapplied_sql().items()}


def reapply_steps(version_table: str) -> list[str]:
    """The SQL of the re-applied part of an upgrade to head, in order: what the online upgrade
    executes and what `alembic upgrade head --sql` writes out (docs/MIGRATIONS.md). Every value
    is a literal of gstjobs's own (file names, hex checksums): nothing from outside."""
    steps = named_queries("reapply.sql")
    names = ", ".join(f"'{name}'" for name in REAPPLIED)
    sql = [
        steps["record"],
        # files renamed or removed since an earlier version leave no stale checksum behind
        f"DELETE FROM gstjobs.schema_objects WHERE name NOT IN ({names});",
    ]
    for name, text in reapplied_sql().items():
        sql.append(text)
        sql.append(
            "INSERT INTO gstjobs.schema_objects (name, checksum)"
            f" VALUES ('{name}', '{checksum(text)}')"
            " ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now();"
        )
    sql.append(steps["drop-stale"])
    # `gstjobs doctor` checks, as an operator, that the database is at head
    sql.append(f"GRANT SELECT ON public.{version_table} TO gstjobs_operator;")
    return sql


def apply_reapplied(conn: psycopg.Connection[Any], version_table: str) -> None:
    """Create or replace the toolkit's views and routines from sql/, then drop those sql/ no
    longer defines.

    In place, not dropped and created again: a view or function of the DBA's built on
    gstjobs's, and the grants others gave on them, survive the upgrade. What is dropped (a
    function removed or re-signed) is dropped without CASCADE, after checking that nothing
    outside gstjobs depends on it (the upgrade stops, naming what does). A view or function
    whose shape changes (columns, return type) is dropped by the revision that changes it.
    The checksums recorded in gstjobs.schema_objects let `gstjobs doctor` spot drift.
    """
    for text in reapply_steps(version_table):
        # No parameters: psycopg sends each step as one simple query, statements and all.
        conn.execute(text.encode())
