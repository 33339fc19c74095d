"""gstjobs as a guest in a DBA's database: what the DBA built on gstjobs (a view, a function, a
grant) survives an upgrade; what an upgrade would have to drop under it stops the upgrade,
named, with nothing changed."""

import subprocess

import psycopg
import pytest

from tests.conftest import alembic

DBA_OBJECTS = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_test') THEN
        CREATE ROLE grafana_test NOLOGIN;
    END IF;
END $$;
CREATE SCHEMA dba;
CREATE VIEW dba.jobs_at_a_glance AS SELECT job, active, last_status FROM gstjobs.job_overview;
CREATE FUNCTION dba.failed_runs() RETURNS bigint LANGUAGE sql
    BEGIN ATOMIC SELECT count(*) FROM gstjobs.run_history WHERE status = 'failed'; END;
GRANT USAGE ON SCHEMA gstjobs TO grafana_test;
GRANT SELECT ON gstjobs.run_history, gstjobs.job_overview TO grafana_test;
"""

CLEANUP = """
DROP SCHEMA IF EXISTS dba CASCADE;
DROP FUNCTION IF EXISTS gstjobs.from_an_older_version();
REVOKE ALL ON gstjobs.run_history, gstjobs.job_overview FROM grafana_test;
REVOKE ALL ON SCHEMA gstjobs FROM grafana_test;
"""


@pytest.fixture
def dba_objects(cron_db: str) -> str:
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute(DBA_OBJECTS)
    yield cron_db
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute(CLEANUP)


def test_what_a_dba_built_on_gstjobs_survives_an_upgrade(dba_objects: str) -> None:
    alembic(dba_objects, "upgrade", "head")  # at head: the re-applied part runs again
    with psycopg.connect(dba_objects) as conn:
        assert conn.execute("SELECT count(*) > 0 FROM dba.jobs_at_a_glance").fetchone() == (True,)
        assert conn.execute("SELECT dba.failed_runs() >= 0").fetchone() == (True,)
        assert conn.execute(
            "SELECT has_table_privilege('grafana_test', 'gstjobs.run_history', 'SELECT'),"
            " has_table_privilege('grafana_test', 'gstjobs.job_overview', 'SELECT')"
        ).fetchone() == (True, True)


def test_an_upgrade_that_would_drop_what_a_dba_built_on_stops_and_changes_nothing(
    dba_objects: str,
) -> None:
    """A function of an older gstjobs that this version no longer defines, and a function of
    the DBA's that uses it: the upgrade stops, names both, and changes nothing; without the
    DBA's function, it drops the old one."""
    with psycopg.connect(dba_objects, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION gstjobs.from_an_older_version() RETURNS integer LANGUAGE sql RETURN 1"
        )
        conn.execute(
            "CREATE FUNCTION dba.uses_it() RETURNS integer LANGUAGE sql"
            " BEGIN ATOMIC SELECT gstjobs.from_an_older_version(); END"
        )
        checksums = conn.execute("SELECT name, checksum FROM gstjobs.schema_objects").fetchall()
    with pytest.raises(subprocess.CalledProcessError) as stopped:
        alembic(dba_objects, "upgrade", "head")
    said = stopped.value.stderr
    assert "no longer has objects that objects of yours depend on" in said
    assert "function dba.uses_it() (depends on function gstjobs.from_an_older_version())" in said
    assert "nothing was changed" in said
    with psycopg.connect(dba_objects, autocommit=True) as conn:
        assert conn.execute("SELECT dba.uses_it()").fetchone() == (1,)
        assert conn.execute("SELECT name, checksum FROM gstjobs.schema_objects").fetchall() == (
            checksums
        )
        conn.execute("DROP FUNCTION dba.uses_it()")
    alembic(dba_objects, "upgrade", "head")
    with psycopg.connect(dba_objects) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('gstjobs.from_an_older_version()')"
        ).fetchone() == (None,)
