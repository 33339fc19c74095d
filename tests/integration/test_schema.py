"""The litigation schema, checked from the catalog so that a new table is checked too."""

from collections.abc import Iterator

import psycopg
import pytest
from gstjobs.datagen import SIZES, generate
from psycopg import errors

from tests.conftest import database


@pytest.fixture(scope="module")
def seeded_shared(server: str) -> Iterator[psycopg.Connection[tuple]]:
    """One seeded database for tests that change nothing (each statement is refused)."""
    with database(server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        generate(conn, SIZES["seed"], seed=7)
        yield conn


def test_every_firm_table_is_keyed_by_tenant(conn: psycopg.Connection[tuple]) -> None:
    rows = conn.execute("""
        SELECT c.oid::regclass::text,
               (SELECT array_agg(a.attname ORDER BY k.ord)
                FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum)
        FROM pg_class AS c
        LEFT JOIN pg_constraint AS con ON con.conrelid = c.oid AND con.contype = 'p'
        WHERE c.relkind = 'r' AND c.relnamespace = 'litigation'::regnamespace
          AND c.oid <> 'litigation.tenants'::regclass
    """).fetchall()
    assert len(rows) >= 6
    for table, key in rows:
        assert key is not None and key[0] == "tenant_id" and len(key) >= 2, (table, key)


def test_every_foreign_key_between_firm_tables_includes_the_tenant(
    conn: psycopg.Connection[tuple],
) -> None:
    rows = conn.execute("""
        SELECT con.conname, con.conrelid::regclass::text, con.confrelid::regclass::text,
               (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY AS k(n, ord)
                JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.n),
               (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY AS k(n, ord)
                JOIN pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.n)
        FROM pg_constraint AS con
        WHERE con.contype = 'f' AND con.connamespace = 'litigation'::regnamespace
          -- shared reference data (event kinds, deadline rules) belongs to no firm
          AND con.confrelid::regclass::text LIKE 'litigation.%'
    """).fetchall()
    assert len(rows) >= 8
    for name, table, target, columns, target_columns in rows:
        if target == "litigation.tenants":
            assert columns == ["tenant_id"] and target_columns == ["id"], name
        else:
            assert columns[0] == "tenant_id" and target_columns[0] == "tenant_id", (name, table)


def test_every_foreign_key_that_acts_on_delete_has_an_index(
    conn: psycopg.Connection[tuple],
) -> None:
    """Deleting a referenced row (purge-history deletes old runs every day) looks up its
    referencing rows: without an index leading with the key's columns, that is a scan of the
    whole referencing table for every row deleted."""
    rows = conn.execute("""
        SELECT con.conname, con.conrelid::regclass::text
        FROM pg_constraint AS con
        WHERE con.contype = 'f'
          AND con.connamespace IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)
          AND con.confdeltype IN ('c', 'n', 'd')  -- CASCADE, SET NULL, SET DEFAULT
          AND NOT EXISTS (
              SELECT FROM pg_index AS i
              WHERE i.indrelid = con.conrelid
                AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey
                AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] <@ con.conkey)
    """).fetchall()
    acting = conn.execute(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype IN ('c', 'n', 'd')"
        " AND connamespace IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)"
    ).fetchone()
    assert acting is not None and acting[0] >= 6  # the four run_id keys, events, holidays
    assert rows == []


@pytest.mark.parametrize(
    ("statement", "error", "constraint"),
    [
        (
            "INSERT INTO litigation.tenants (name, timezone) VALUES ('X', 'Asia/Bombayy')",
            errors.CheckViolation,
            "iana_timezone_known",
        ),
        (
            "INSERT INTO litigation.tenants (name, timezone) VALUES ('X', 'IST')",
            errors.CheckViolation,
            "iana_timezone_known",
        ),
        (
            "INSERT INTO litigation.clients (tenant_id, name, gstin) VALUES (1, 'X', '27AAPFU0939F1ZW')",
            errors.CheckViolation,
            "gstin_well_formed",
        ),
        (
            "INSERT INTO litigation.clients (tenant_id, name, gstin) VALUES (1, 'X', '27AAPFU0939F1Z')",
            errors.CheckViolation,
            "gstin_well_formed",
        ),
        (
            "INSERT INTO litigation.clients (tenant_id, name, gstin) VALUES (1, 'X', '27aapfu0939f1zv')",
            errors.CheckViolation,
            "gstin_well_formed",
        ),
        (
            "UPDATE litigation.tasks SET status = 'done' WHERE status = 'open'",
            errors.CheckViolation,
            "tasks_status_check",
        ),
        (
            "UPDATE litigation.hearings SET status = 'postponed' WHERE id = 1",
            errors.CheckViolation,
            "hearings_status_check",
        ),
        (
            "UPDATE litigation.members SET role = 'intern' WHERE id = 1",
            errors.CheckViolation,
            "members_role_check",
        ),
        # firm 1's task pointing at firm 2's case
        (
            "UPDATE litigation.tasks SET case_id = (SELECT min(id) FROM litigation.cases WHERE tenant_id = 2)"
            " WHERE tenant_id = 1 AND id = 1",
            errors.ForeignKeyViolation,
            "tasks_tenant_id_case_id_fkey",
        ),
    ],
)
def test_bad_data_is_refused_with_a_clear_error(
    seeded_shared: psycopg.Connection[tuple],
    statement: str,
    error: type[Exception],
    constraint: str,
) -> None:
    with pytest.raises(error) as raised:
        seeded_shared.execute(statement)
    assert constraint in str(raised.value)


def test_valid_gstin_is_accepted(conn: psycopg.Connection[tuple]) -> None:
    conn.execute("INSERT INTO litigation.tenants (id, name) VALUES (1, 'Firm')")
    conn.execute(
        "INSERT INTO litigation.clients (tenant_id, name, gstin) VALUES (1, 'X', '27AAPFU0939F1ZV')"
    )
    # the check character the function computes is the one the GSTIN carries
    assert conn.execute(
        "SELECT gstin, litigation.gstin_check_character(gstin) FROM litigation.clients"
    ).fetchall() == [("27AAPFU0939F1ZV", "V")]


def test_generator_is_deterministic_and_realistic(db: str, server: str) -> None:
    anchor = "2026-11-28T09:00:00+05:30"
    digests = []
    for seed in (3, 3, 4):
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE litigation.tenants, litigation.members, litigation.clients, litigation.cases,"
                " litigation.hearings, litigation.tasks, litigation.deadlines, litigation.case_events,"
                " litigation.holiday_calendars, litigation.holidays, litigation.whatsapp_consents,"
                " litigation.notification_defaults, litigation.notification_preferences"
            )
            generate(
                conn,
                SIZES["seed"],
                seed=seed,
                anchor=__import__("datetime").datetime.fromisoformat(anchor),
            )
            digest = conn.execute("""
                SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM (
                    SELECT to_jsonb(x)::text AS t FROM litigation.tasks AS x
                    UNION ALL SELECT to_jsonb(x)::text FROM litigation.hearings AS x
                    UNION ALL SELECT to_jsonb(x)::text FROM litigation.clients AS x) AS rows
            """).fetchone()
            digests.append(digest)
            facts = conn.execute(
                """
                SELECT (SELECT count(*) FROM litigation.tenants),
                       (SELECT count(*) FROM litigation.tasks),
                       (SELECT count(*) FROM litigation.hearings),
                       (SELECT count(DISTINCT timezone) FROM litigation.tenants),
                       (SELECT array_agg(DISTINCT section ORDER BY section) FROM litigation.cases),
                       (SELECT count(*) FROM litigation.tasks WHERE status IN ('open', 'in_progress')
                            AND due_at < %s::timestamptz),
                       (SELECT count(*) FROM litigation.deadlines WHERE status = 'missed'),
                       (SELECT bool_and(manager_id IS NOT NULL) FROM litigation.members WHERE role = 'associate')
            """,
                (anchor,),
            ).fetchone()
            assert facts is not None
            assert facts[:4] == (10, 500, 100, 2)
            assert set(facts[4]) == {"73", "74", "74A", "107", "112"}
            assert facts[5] > 0 and facts[6] > 0 and facts[7]
    assert digests[0] == digests[1] != digests[2]
