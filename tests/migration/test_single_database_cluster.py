"""Removing gstjobs from a DBA's own cluster, with one application database holding the DBA's
tables, roles and views (the test cluster always has other databases, which hid the failures):
what depends on gstjobs stops the removal, named; the firms' data goes only on the DBA's word;
the removal works with one database; a DBA's role membership survives it and a re-install."""

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import PORT, ROOT
from tests.integration.conftest import FIRM

NAME, CLUSTER_PORT, DATABASE = "dba-test", PORT + 3, "lawfirm"
ENV = {**os.environ, "GSTJOBS_PORT": str(CLUSTER_PORT), "GSTJOBS_CRON_DB": DATABASE}
DSN = f"postgresql://postgres@127.0.0.1:{CLUSTER_PORT}/{DATABASE}"

DBA_OBJECTS = """
CREATE ROLE lawapp LOGIN;
GRANT gstjobs_operator TO lawapp;
CREATE TABLE public.invoices (tenant_id bigint, case_id bigint, amount numeric,
    CONSTRAINT invoices_case_fk FOREIGN KEY (tenant_id, case_id) REFERENCES litigation.cases (tenant_id, id));
CREATE VIEW public.invoice_cases AS
    SELECT i.amount, c.reference FROM public.invoices AS i
    JOIN litigation.cases AS c ON c.tenant_id = i.tenant_id AND c.id = i.case_id;
"""


def cluster(action: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "cluster.sh"), action, NAME], env=ENV, check=True)


def alembic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"dsn={DSN}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def single_database(server: str) -> Iterator[str]:
    """A cluster of its own whose one database is the DBA's, gstjobs installed in it."""
    try:
        cluster("start")
        with psycopg.connect(DSN.replace(DATABASE, "postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            for role in ("lawapp", "gstjobs_app", "gstjobs_operator", "gstjobs_admin",
                         "gstjobs_runner", "gstjobs_owner"):  # fmt: skip
                conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"CREATE DATABASE {DATABASE}")
        upgraded = alembic("upgrade", "head")
        assert upgraded.returncode == 0, upgraded.stderr
        yield DSN
    finally:
        cluster("stop")
        cluster("remove")


@pytest.mark.slow
def test_removal_says_what_is_wrong_first_and_keeps_what_is_the_dbas(single_database: str) -> None:
    with psycopg.connect(single_database, autocommit=True) as conn:
        conn.execute(FIRM.encode())
        conn.execute(DBA_OBJECTS)
        conn.execute("INSERT INTO public.invoices VALUES (1, 1, 125000)")

    # objects of the DBA's depend on gstjobs: stop, name them, change nothing, no traceback
    refused = alembic("downgrade", "base")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    said = refused.stderr
    assert "gstjobs: not removed: objects of yours depend on gstjobs:" in said
    assert "constraint invoices_case_fk on table invoices" in said
    assert "view public.invoice_cases (depends on table litigation.cases)" in said
    assert "policy" not in said and "nothing was changed" in said
    with psycopg.connect(single_database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM litigation.cases").fetchone() == (3,)
        conn.execute("DROP VIEW public.invoice_cases")
        conn.execute("ALTER TABLE public.invoices DROP CONSTRAINT invoices_case_fk")

    # the firms' data: only on the DBA's word
    refused = alembic("downgrade", "base")
    assert refused.returncode != 0
    assert "removing gstjobs would delete the data of 2 firm(s) (3 cases" in refused.stderr
    assert "alembic -x drop-data=yes downgrade base" in refused.stderr
    removed = alembic("-x", "drop-data=yes", "downgrade", "base")
    assert removed.returncode == 0, removed.stderr  # one database in the cluster: it works
    assert "role gstjobs_operator kept: lawapp of yours are members of it" in removed.stderr
    with psycopg.connect(single_database, autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('gstjobs', 'litigation')"
        ).fetchone() == (0,)
        assert conn.execute("SELECT amount FROM public.invoices").fetchone() == (125000,)
        kept = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'gstjobs\\_%' ORDER BY 1"
        ).fetchall()
        assert kept == [("gstjobs_operator",)]

    # installed again: the DBA's membership is as it was
    assert alembic("upgrade", "head").returncode == 0
    with psycopg.connect(single_database, autocommit=True) as conn:
        assert conn.execute(
            "SELECT pg_has_role('lawapp', 'gstjobs_operator', 'MEMBER')"
        ).fetchone() == (True,)
