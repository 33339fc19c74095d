"""The test harness: a PostgreSQL cluster of the tests' own, a migrated template, a clone per test.

pg_cron can be created only in the database named by `cron.database_name`, and its launcher
stays connected to that database, which forbids using it as a template. So the session:

1. starts the `test` cluster (scripts/cluster.sh, port 54321, separate from the demo's);
2. when the migrations, sql/ or plpy/ changed since the template was built (a fingerprint kept
   as the template's comment): restarts the cluster with cron.database_name = gstjobs_template,
   runs `alembic upgrade head` there, restarts it with cron.database_name = gstjobs_cron, and
   creates gstjobs_cron as a copy of the template, where pg_cron really runs the jobs;
3. gives each test that asks for `db` a fresh `CREATE DATABASE ... TEMPLATE gstjobs_template`.
   A clone holds pg_cron's tables as inert copies: pg_cron never runs its jobs. Tests that need
   real ticks, or that migrate up and down, use `cron_db` (gstjobs_cron) instead.
"""

import contextlib
import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("GSTJOBS_TEST_PORT", "54321"))
TEMPLATE = "gstjobs_template"
# every job gstjobs installs, in name order
JOBS = [
    "analytics-snapshot",
    "deadline-alerts",
    "dispatch-notifications",
    "health-check",
    "hearing-reminders",
    "heartbeat",
    "purge-history",
    "sla-check",
]
CRON_DB = "gstjobs_cron"


def dsn(dbname: str, user: str = "postgres") -> str:
    return f"postgresql://{user}@127.0.0.1:{PORT}/{dbname}"


def cluster(action: str, cron_db: str) -> None:
    env = {
        **os.environ,
        "GSTJOBS_PORT": str(PORT),
        "GSTJOBS_CRON_DB": cron_db,
        "GSTJOBS_FSYNC": "off",
    }
    subprocess.run([str(ROOT / "scripts" / "cluster.sh"), action, "test"], env=env, check=True)


def alembic(target_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run alembic as a DBA would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"dsn={target_dsn}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def fingerprint() -> str:
    digest = hashlib.sha256()
    for pattern in (
        "migrations/**/*.py",
        "migrations/**/*.sql",
        "sql/*.sql",
        "plpy/*.py",
        "cli/gstjobs/schema.py",
        "cli/gstjobs/resources.py",
    ):
        for path in sorted(ROOT.glob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()


def admin() -> psycopg.Connection[tuple]:
    return psycopg.connect(dsn("postgres"), autocommit=True)


def build_template(wanted: str) -> None:
    with admin() as conn:
        for name in (CRON_DB, TEMPLATE):
            if database_exists(conn, name):
                conn.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE false')
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    cluster("restart", TEMPLATE)
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    alembic(dsn(TEMPLATE), "upgrade", "head")
    cluster("restart", CRON_DB)
    with psycopg.connect(dsn(TEMPLATE), autocommit=True) as conn:
        # pg_cron may have ticked in the template before the restart: start clones clean.
        conn.execute("DELETE FROM gstjobs.runs")
        conn.execute("DELETE FROM cron.job_run_details")
    with admin() as conn:
        conn.execute(f'ALTER DATABASE "{TEMPLATE}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        conn.execute(f'CREATE DATABASE "{CRON_DB}" TEMPLATE "{TEMPLATE}"')
        conn.execute(f"COMMENT ON DATABASE \"{TEMPLATE}\" IS '{wanted}'")
    with psycopg.connect(dsn(CRON_DB), autocommit=True) as conn:
        # The copied cron.job rows name the template; point them at the database they live in.
        conn.execute("UPDATE cron.job SET database = current_database()")
        adopt(conn)


def database_exists(conn: psycopg.Connection[tuple], name: str) -> bool:
    return (
        conn.execute("SELECT FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    )


@pytest.fixture(scope="session")
def server() -> str:
    """The test cluster, with an up-to-date template; returns the admin DSN."""
    cluster("start", CRON_DB)
    wanted = fingerprint()
    with admin() as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (TEMPLATE,),
        ).fetchone()
        cron_db = conn.execute("SHOW cron.database_name").fetchone()
        ready = row is not None and row[0] == wanted and database_exists(conn, CRON_DB)
    if ready:
        with psycopg.connect(dsn(CRON_DB)) as conn:
            # an interrupted migration test can leave gstjobs_cron downgraded
            ready = conn.execute("SELECT to_regclass('gstjobs.jobs') IS NOT NULL").fetchone() == (
                True,
            )
    with admin() as conn:
        launcher = conn.execute(
            "SELECT FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'"
        ).fetchone()
    if not ready or cron_db is None or cron_db[0] != CRON_DB:
        build_template(wanted)
    elif launcher is None:
        # pg_cron's launcher ends for good when its database is dropped (an earlier session's
        # teardown): a restart brings it back.
        cluster("restart", CRON_DB)
    with psycopg.connect(dsn(CRON_DB), autocommit=True) as conn:
        adopt(conn)  # a copy of the template, confirmed (also when built by an older harness)
    return dsn("postgres")


def adopt(conn: psycopg.Connection[Any]) -> None:
    """A clone of the template is a copy, which gstjobs keeps from sending until it is
    confirmed as production: the harness confirms its clones, as a DBA would its own."""
    conn.execute(
        "UPDATE gstjobs.installation SET database_name = current_database(),"
        " system_identifier = (SELECT system_identifier FROM pg_control_system())"
    )


@contextlib.contextmanager
def database(server: str) -> Iterator[str]:
    """A fresh migrated database, dropped afterwards; its DSN (superuser)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        adopt(conn)
    try:
        yield dsn(name)
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(server: str) -> Iterator[str]:
    """A fresh migrated database for one test; its DSN (superuser)."""
    with database(server) as name:
        yield name


@pytest.fixture(scope="session")
def cron_db(server: str) -> str:
    """The database pg_cron runs in (gstjobs_cron); shared by the tests that use it."""
    return dsn(CRON_DB)


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection[tuple]]:
    """An autocommit superuser connection to a fresh migrated database."""
    with psycopg.connect(db, autocommit=True) as connection:
        yield connection


# ---------------------------------------------------------------- people --------------------
OPERATOR = "gstjobs_test_operator"
# an operator who also holds the delivery credentials (gstjobs_admin)
ADMIN = "gstjobs_test_admin"


def login_role(server: str, name: str, member_of: str = "") -> str:
    """A login role of the cluster (roles outlive databases), created once."""
    with psycopg.connect(server, autocommit=True) as conn:
        if conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None:
            conn.execute(f"CREATE ROLE {name} LOGIN {'IN ROLE ' + member_of if member_of else ''}")
    return name


@pytest.fixture(scope="session")
def operator_role(server: str) -> str:
    """A login role that is only a member of gstjobs_operator, as people are."""
    return login_role(server, OPERATOR, "gstjobs_operator")


@pytest.fixture(scope="session")
def admin_role(server: str) -> str:
    """A login role that is a member of gstjobs_operator and gstjobs_admin."""
    return login_role(server, ADMIN, "gstjobs_operator, gstjobs_admin")


def as_operator(dsn: str) -> str:
    return as_login(dsn, OPERATOR)


def as_login(dsn: str, login: str) -> str:
    """dsn (a superuser's, from db or cron_db) for another login of the test cluster."""
    return dsn.replace("postgresql://postgres@", f"postgresql://{login}@")


@pytest.fixture
def operator(db: str, operator_role: str) -> Iterator[psycopg.Connection[tuple]]:
    """An autocommit connection to the test's database as the operator."""
    with psycopg.connect(as_operator(db), autocommit=True) as connection:
        yield connection


def wait_until(target: str, query: str, params: tuple[Any, ...] = (), seconds: float = 60) -> Any:
    """The first row of query once it has one (the server may be restarting meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(target, autocommit=True) as conn:
                row = conn.execute(query, params).fetchone()
                if row is not None:
                    return row
        except psycopg.OperationalError:
            pass  # the server is starting, or restarting after a crash
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {query} {params}")


# Every toolkit and firm table, and pg_cron's job table, each as a digest of its rows: what a
# refused request must leave as it was.
CHECKSUM = """
SELECT name, digest FROM (
    SELECT c.oid::regclass::text AS name,
           (xpath('/row/d/text()', query_to_xml(
               format('SELECT md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) AS d FROM %s AS t',
                      c.oid::regclass), false, true, '')))[1]::text AS digest
    FROM pg_class AS c
    WHERE c.relkind = 'r' AND c.relnamespace IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)
    UNION ALL
    SELECT 'cron.job', md5(string_agg(j::text, ',' ORDER BY jobid)) FROM cron.job AS j
) AS tables
ORDER BY name
"""


def table_digests(dsn: str) -> dict[str, str]:
    """Each table's digest (CHECKSUM), read as the superuser of dsn."""
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(CHECKSUM).fetchall())


def checksum(dsn: str) -> str:
    """One digest of every table (CHECKSUM)."""
    return ",".join(f"{name}:{digest}" for name, digest in table_digests(dsn).items())
