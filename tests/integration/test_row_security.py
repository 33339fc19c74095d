"""Row-level security on every firm-scoped table, found from the catalog (a new table is
checked too): the firm application, confined to firm 1, can neither read, insert, update nor
delete another firm's rows, nor the rows of no firm (health alerts). The check fails, never
skips, on a table without rows of two firms; and weakening any one policy turns it red."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from gstjobs.datagen import SIZES, generate
from psycopg import errors
from psycopg.types.json import Jsonb

from tests.conftest import database

APP = "gstjobs_app"

# Firm-scoped tables: all of schema litigation, and the toolkit's tables with a tenant_id.
TENANT_TABLES = """
    SELECT c.oid::regclass::text,
           CASE WHEN c.oid = 'litigation.tenants'::regclass THEN 'id' ELSE 'tenant_id' END
    FROM pg_class AS c
    WHERE c.relkind = 'r'
      AND (c.relnamespace = 'litigation'::regnamespace
           OR (c.relnamespace = 'gstjobs'::regnamespace AND EXISTS (
                   SELECT FROM pg_attribute AS a
                   WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)))
    ORDER BY 1
"""

# Rows of firms 1 and 2 (and of no firm, where a table allows it) in every firm-scoped table
# the generator leaves empty: the toolkit's own, and case events and calendars.
OTHER_TABLES = """
INSERT INTO gstjobs.runs (job, tenant_id, trigger, as_of, status, finished_at) VALUES
    ('hearing-reminders', 1, 'manual', now(), 'succeeded', now()),
    ('hearing-reminders', 2, 'manual', now(), 'succeeded', now()),
    ('heartbeat', NULL, 'cron', now(), 'succeeded', now());
INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at) VALUES
    ('hearing-reminders', 1, '2026-11-20', 'done', now()),
    ('hearing-reminders', 2, '2026-11-20', 'done', now());
INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body, dedupe_key)
VALUES (1, 'sla-breach', 'email', 'a@firm1.example.in', 's', 'b', 'rls:1'),
       (2, 'sla-breach', 'email', 'a@firm2.example.in', 's', 'b', 'rls:2'),
       (NULL, 'health-alert', 'email', 'ops@example.in', 's', 'b', 'rls:ops');
INSERT INTO gstjobs.analytics_snapshots (tenant_id, local_date, open_cases_by_stage,
    demand_in_dispute, hearings_next_7_days, open_tasks, overdue_tasks, deadlines_missed)
VALUES (1, '2026-11-20', '{}', 0, 0, 0, 0, 0), (2, '2026-11-20', '{}', 0, 0, 0, 0, 0);
INSERT INTO litigation.holiday_calendars (tenant_id, name) VALUES (1, 'Mumbai'), (2, 'Delhi');
INSERT INTO litigation.holidays (tenant_id, calendar_id, holiday_on, name)
    SELECT tenant_id, id, '2026-12-25', 'Christmas' FROM litigation.holiday_calendars;
INSERT INTO litigation.case_events (tenant_id, case_id, kind, event_on)
    SELECT tenant_id, min(id), 'scn_73_issued', '2026-10-01' FROM litigation.cases
    WHERE tenant_id IN (1, 2) GROUP BY tenant_id;
INSERT INTO litigation.notification_defaults (tenant_id, kind, email, whatsapp)
VALUES (1, 'overdue', true, false), (2, 'overdue', true, false);
INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email, whatsapp)
    SELECT tenant_id, min(id), 'overdue', false, true FROM litigation.members
    WHERE tenant_id IN (1, 2) GROUP BY tenant_id;
"""


def fill_every_tenant_table(conn: psycopg.Connection[Any]) -> None:
    generate(conn, SIZES["seed"], seed=7)
    conn.execute(OTHER_TABLES)


@pytest.fixture(scope="module")
def filled(server: str) -> Iterator[psycopg.Connection[Any]]:
    """One database with rows of two firms in every firm-scoped table (the checks roll back
    whatever they try)."""
    with database(server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        fill_every_tenant_table(conn)
        yield conn


def as_firm_1(conn: psycopg.Connection[Any], statement: str, params: Any = None) -> int:
    """statement as the firm application confined to firm 1, rolled back: its row count."""
    with conn.transaction(force_rollback=True):
        conn.execute(f"SET LOCAL ROLE {APP}")
        conn.execute("SELECT set_config('app.tenant_id', '1', true)")
        return conn.execute(statement, params).rowcount


def granted_columns(conn: psycopg.Connection[Any], table: str, privilege: str) -> list[str]:
    """The columns of table the application may INSERT or UPDATE, in order."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            f" AND NOT attisdropped AND has_column_privilege('{APP}', attrelid, attnum, %s)"
            " ORDER BY attnum",
            (table, privilege),
        )
    ]


def leaks(conn: psycopg.Connection[Any], table: str, column: str) -> list[str]:
    """What firm 1's application can do to rows that are not firm 1's, in table."""
    found: list[str] = []

    def may(privilege: str) -> bool:
        # DELETE is granted on a table only; the others may be granted on some columns
        check = "has_table_privilege" if privilege == "DELETE" else "has_any_column_privilege"
        granted = conn.execute(
            f"SELECT {check}('{APP}', %s::regclass, %s)", (table, privilege)
        ).fetchone()
        return granted == (True,)

    if may("SELECT"):
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL ROLE {APP}")
            conn.execute("SELECT set_config('app.tenant_id', '1', true)")
            other, own = conn.execute(
                f"SELECT count(*) FILTER (WHERE {column} IS DISTINCT FROM 1),"
                f" count(*) FILTER (WHERE {column} = 1) FROM {table}"
            ).fetchone()  # type: ignore[misc]
        if other:
            found.append(f"{table}: reads {other} rows of other firms")
        if not own:
            found.append(f"{table}: its own rows are invisible")

    def touches(statement: str) -> int | str:
        """Rows of other firms the statement reached: a count, or the error they raised (a
        statement that reaches none cannot fail on them)."""
        try:
            return as_firm_1(conn, statement)
        except psycopg.Error as error:
            return f"{type(error).__name__}: {str(error).splitlines()[0]}"

    updatable = granted_columns(conn, table, "UPDATE")
    if updatable:
        reached = touches(
            f"UPDATE {table} SET {updatable[0]} = {updatable[0]} WHERE {column} IS DISTINCT FROM 1"
        )
        if reached:
            found.append(f"{table}: updates rows of other firms ({reached})")
    if may("DELETE"):
        reached = touches(f"DELETE FROM {table} WHERE {column} IS DISTINCT FROM 1")
        if reached:
            found.append(f"{table}: deletes rows of other firms ({reached})")
    if column in updatable:
        refusal = row_security_refuses(conn, f"UPDATE {table} SET {column} = 2 WHERE {column} = 1")
        if refusal:
            found.append(f"{table}: moving its rows to another firm: {refusal}")
    insertable = granted_columns(conn, table, "INSERT")
    if insertable:
        sample = conn.execute(
            f"SELECT to_jsonb(t) FROM {table} AS t WHERE {column} = 2 LIMIT 1"
        ).fetchone()
        assert sample is not None, f"{table}: no row of firm 2 to offer"
        row = dict(sample[0]) | ({"id": 10_000_000} if "id" in sample[0] else {})
        columns = ", ".join(insertable)
        refusal = row_security_refuses(
            conn,
            f"INSERT INTO {table} ({columns}) SELECT {columns}"
            f" FROM jsonb_populate_record(NULL::{table}, %s::jsonb)",
            (Jsonb(row),),
        )
        if refusal:
            found.append(f"{table}: inserting a row of another firm: {refusal}")
    return found


def row_security_refuses(conn: psycopg.Connection[Any], statement: str, params: Any = None) -> str:
    """'' when row security refuses statement (as firm 1's application), which it checks
    before any constraint; otherwise what happened instead (a row written, or a constraint
    reached: both mean the row got past row security)."""
    try:
        written = as_firm_1(conn, statement, params)
    except errors.InsufficientPrivilege as error:
        if "row-level security" in str(error):
            return ""
        return f"refused otherwise: {str(error).splitlines()[0]}"
    except psycopg.Error as error:
        return f"past row security: {type(error).__name__}"
    return f"{written} row(s) written"


def test_every_firm_table_has_rows_of_two_firms_and_keeps_them_apart(
    filled: psycopg.Connection[Any],
) -> None:
    tables = filled.execute(TENANT_TABLES).fetchall()
    assert len(tables) >= 14  # 10 of litigation, 4 of the toolkit: at least these
    problems = []
    for table, column in tables:
        security = filled.execute(
            "SELECT c.relrowsecurity, EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = c.oid"
            "   AND %s::regrole = ANY (p.polroles))"
            " FROM pg_class AS c WHERE c.oid = %s::regclass",
            (APP, table),
        ).fetchone()
        if security != (True, True):
            problems.append(f"{table}: no row-level security policy for {APP}")
        firms = filled.execute(
            f"SELECT count(DISTINCT {column}) FROM {table} WHERE {column} IN (1, 2)"
        ).fetchone()
        if firms != (2,):
            problems.append(f"{table}: the test data has no rows of firms 1 and 2 (add some)")
            continue
        problems.extend(leaks(filled, table, column))
    assert problems == []


def test_a_weakened_policy_is_caught(db: str) -> None:
    """Each policy of a table the application may use, replaced by USING (true) WITH CHECK
    (true), is reported by the check: the check can fail."""
    with psycopg.connect(db, autocommit=True) as conn:
        fill_every_tenant_table(conn)
        weakened = 0
        for table, column in conn.execute(TENANT_TABLES).fetchall():
            usable = conn.execute(
                f"SELECT has_any_column_privilege('{APP}', %s::regclass, 'SELECT')"
                f" OR has_any_column_privilege('{APP}', %s::regclass, 'INSERT')"
                f" OR has_any_column_privilege('{APP}', %s::regclass, 'UPDATE')"
                f" OR has_table_privilege('{APP}', %s::regclass, 'DELETE')",
                (table,) * 4,
            ).fetchone()
            if usable != (True,):
                continue
            with conn.transaction(force_rollback=True):
                conn.execute(
                    f"ALTER POLICY tenant_isolation ON {table} USING (true) WITH CHECK (true)"
                )
                assert leaks(conn, table, column), f"{table}: a weakened policy went unnoticed"
            weakened += 1
        assert weakened >= 12


def test_without_a_firm_the_application_sees_nothing(filled: psycopg.Connection[Any]) -> None:
    for table, _ in filled.execute(TENANT_TABLES).fetchall():
        if filled.execute(
            f"SELECT has_any_column_privilege('{APP}', %s::regclass, 'SELECT')", (table,)
        ).fetchone() != (True,):
            continue
        with filled.transaction(force_rollback=True):
            filled.execute(f"SET LOCAL ROLE {APP}")
            assert filled.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
