"""The sender runs on the database server's own Python, whatever environment the server was
started with. PL/Python takes sys.executable from the server's PATH, which a service manager
may set without python3; and Debian's postgresql-plpython3-15 needs only Python's library, so
the interpreter may not be installed at all. A server of the first kind still sends; one with
no interpreter says so, in the run and in `gstjobs doctor`, and its messages wait untried.

The server here is a cluster of its own, started with only the environment named (cluster.sh's
GSTJOBS_SERVER_ENV), as a service manager would start it."""

import os
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import PORT, ROOT, alembic
from tests.delivery.conftest import SmtpSink, add
from tests.integration.conftest import FIRM

NAME, CLUSTER_PORT, DATABASE = "bare-env", PORT + 4, "lawfirm"
DSN = f"postgresql://postgres@127.0.0.1:{CLUSTER_PORT}/{DATABASE}"
# the server's PATH: PostgreSQL's own programs, no python3
BARE = "PATH=/usr/lib/postgresql/15/bin"


def cluster(action: str, server_env: str = BARE) -> None:
    env = {
        **os.environ,
        "GSTJOBS_PORT": str(CLUSTER_PORT),
        "GSTJOBS_CRON_DB": DATABASE,
        "GSTJOBS_FSYNC": "off",
        "GSTJOBS_SERVER_ENV": server_env,
    }
    subprocess.run([str(ROOT / "scripts" / "cluster.sh"), action, NAME], env=env, check=True)


@pytest.fixture(scope="module")
def bare_server() -> Iterator[str]:
    """gstjobs installed in a server whose environment is BARE; pg_cron's jobs paused, so that
    only the tests' own runs send."""
    try:
        cluster("restart")
        with psycopg.connect(DSN.replace(DATABASE, "postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DATABASE}")
        alembic(DSN, "upgrade", "head")
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute("SELECT cron.alter_job(jobid, active => false) FROM cron.job")
            conn.execute(FIRM.encode())
        yield DSN
    finally:
        cluster("stop")


@pytest.fixture
def outbox(bare_server: str, smtp: SmtpSink) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(bare_server, autocommit=True) as conn:
        conn.execute("DELETE FROM gstjobs.notifications")
        settings = {"smtp.host": "127.0.0.1", "smtp.port": str(smtp.port)}
        settings["smtp.from"] = "alerts@mehta.example.in"
        for key, value in settings.items():
            conn.execute("SELECT gstjobs.set_setting(%s, %s)", (key, value))
        yield conn


def server_python(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    """sys.executable and sys.base_prefix in the server's PL/Python."""
    conn.execute(
        "CREATE OR REPLACE FUNCTION pg_temp.python() RETURNS text[] LANGUAGE plpython3u"
        " AS 'import sys; return [sys.executable, sys.base_prefix]'"
    )
    row = conn.execute("SELECT pg_temp.python()").fetchone()
    assert row is not None
    return row[0][0], row[0][1]


def dispatch(conn: psycopg.Connection[Any]) -> tuple[str, str | None]:
    called = conn.execute(
        "CALL gstjobs.run_job('dispatch-notifications', as_of => %s)", (datetime.now(UTC),)
    ).fetchone()
    assert called is not None
    row = conn.execute("SELECT status, error FROM gstjobs.runs WHERE id = %s", called).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_server_started_without_python3_on_its_path_sends(
    outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    executable, _ = server_python(outbox)
    assert executable == "", "the server's PATH should not lead PL/Python to an interpreter"
    (waiting,) = add(outbox, 1)
    assert dispatch(outbox) == ("succeeded", None)
    assert len(smtp.received) == 1
    assert outbox.execute(
        "SELECT status FROM gstjobs.notifications WHERE id = %s", (waiting,)
    ).fetchone() == ("sent",)


@pytest.fixture
def no_interpreter(bare_server: str) -> Iterator[None]:
    """The server restarted with a Python prefix that holds Python's library and no
    interpreter, as a server with only libpython3.11 installed has."""
    prefix = Path(tempfile.mkdtemp(prefix="gstjobs-libpython-only-"))
    try:
        prefix.chmod(0o755)
        (prefix / "lib").mkdir(mode=0o755)
        (prefix / "lib" / "python3.11").symlink_to("/usr/lib/python3.11")
        cluster("restart", f"{BARE} PYTHONHOME={prefix}")
        yield
    finally:
        cluster("restart")
        (prefix / "lib" / "python3.11").unlink()
        (prefix / "lib").rmdir()
        prefix.rmdir()


def test_a_server_without_a_python_interpreter_says_so_and_nothing_is_tried(
    no_interpreter: None, outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    executable, prefix = server_python(outbox)
    assert executable == "" and not os.path.exists(f"{prefix}/bin/python3.11")
    (waiting,) = add(outbox, 1)
    wanted = (
        f"the sender cannot start: this server has no python3.11 interpreter"
        f" ({prefix}/bin/python3.11; PL/Python needs only Python's library):"
        " install it (Debian: apt-get install python3.11-minimal)"
    )
    assert dispatch(outbox) == ("failed", f"email not sent: {wanted}")
    assert smtp.received == []
    assert outbox.execute(
        "SELECT status, attempts FROM gstjobs.notifications WHERE id = %s", (waiting,)
    ).fetchone() == ("pending", 0)
    # `gstjobs doctor` says it too (and that WhatsApp is not set up)
    doctor = outbox.execute(
        "SELECT ok, detail FROM gstjobs.doctor_facts() WHERE name = 'delivery possible'"
    ).fetchone()
    assert doctor is not None and doctor[0] is False and f"email: {wanted};" in doctor[1]
