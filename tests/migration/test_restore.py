"""Backup and restore as docs/OPERATIONS.md says it: the roles first, a server whose pg_cron
works in the database's name, `pg_restore` of a `pg_dump`. The restored database is a copy on
another server: its local-time slots already taken stay taken, it sends nothing, doctor says
how to confirm it; confirmed by an administrator, it sends each waiting message once."""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.conftest import PORT, ROOT
from tests.delivery.conftest import SmtpSink
from tests.integration.conftest import FIRM
from tests.integration.test_firm_isolation import AS_OF, WORK

NAME, CLUSTER_PORT = "restore-test", PORT + 4
BIN = Path("/usr/lib/postgresql/15/bin")
EMAIL = "SELECT id, status FROM gstjobs.notifications WHERE channel = 'email' ORDER BY id"


def tool(*args: str) -> None:
    """A PostgreSQL client program, failing the test with its message."""
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def second_server(db: str) -> Iterator[dict[str, str]]:
    """Another cluster whose pg_cron works in a database of the test's database's name."""
    name = db.rsplit("/", 1)[1]
    env = {**os.environ, "GSTJOBS_PORT": str(CLUSTER_PORT), "GSTJOBS_CRON_DB": name}
    script = str(ROOT / "scripts" / "cluster.sh")
    try:
        subprocess.run([script, "start", NAME], env=env, check=True)
        yield {
            "server": f"postgresql://postgres@127.0.0.1:{CLUSTER_PORT}/postgres",
            "database": f"postgresql://postgres@127.0.0.1:{CLUSTER_PORT}/{name}",
            "name": name,
        }
    finally:
        subprocess.run([script, "stop", NAME], env=env, check=True)
        subprocess.run([script, "remove", NAME], env=env, check=True)


def restore(source: str, server: str, target: dict[str, str], dump: Path) -> None:
    """docs/OPERATIONS.md, "Back up and restore": roles, then the database under its name."""
    tool(str(BIN / "pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={source}")
    roles = dump.with_suffix(".roles.sql")
    tool(str(BIN / "pg_dumpall"), "--roles-only", f"--file={roles}", f"--dbname={server}")
    # the one error is the role postgres, which every server has
    subprocess.run(
        [str(BIN / "psql"), "--quiet", f"--file={roles}", target["server"]], capture_output=True
    )
    with psycopg.connect(target["server"], autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target["name"]}"')
    tool(str(BIN / "pg_restore"), "--exit-on-error", f"--dbname={target['database']}", str(dump))


def dispatch_until_none_waits(dsn: str) -> None:
    """dispatch by hand until no email waits (pg_cron's own dispatch may be the one running)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM gstjobs.notifications WHERE channel = 'email'"
            " AND status <> 'sent'"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the adopted copy did not send"
            conn.execute("CALL gstjobs.run_job('dispatch-notifications')")


def test_a_restored_copy_keeps_its_slots_and_sends_nothing_until_adopted(
    db: str, server: str, smtp: SmtpSink, second_server: dict[str, str], tmp_path: Path
) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(FIRM.encode())
        conn.execute(WORK.encode())
        conn.execute(
            "SELECT gstjobs.set_settings(jsonb_build_object('smtp.host', '127.0.0.1',"
            " 'smtp.port', %s::text))",
            (smtp.port,),
        )
        # both firms' 08:00 slots taken: their reminders wait in the outbox, unsent
        conn.execute(
            "CALL gstjobs.run_job('hearing-reminders', as_of => %s)", (AS_OF["hearing-reminders"],)
        )
        waiting = conn.execute(EMAIL).fetchall()
    assert waiting and {status for _, status in waiting} == {"pending"}

    restore(db, server, second_server, tmp_path / "lawfirm.dump")
    copy = second_server["database"]
    with psycopg.connect(copy, autocommit=True) as conn:
        problem = conn.execute("SELECT gstjobs.installation_problem()").fetchone()
        assert problem is not None and "this database is a copy" in str(problem[0])
        # the slots came with the data: the same moment again makes no second reminder
        conn.execute(
            "CALL gstjobs.run_job('hearing-reminders', as_of => %s)", (AS_OF["hearing-reminders"],)
        )
        conn.execute("CALL gstjobs.run_job('dispatch-notifications')")
        assert conn.execute(EMAIL).fetchall() == waiting
    assert smtp.received == []

    runner = CliRunner()
    doctor = runner.invoke(cli, ["--dsn", copy, "doctor"])
    assert doctor.exit_code == 1 and "FAIL  production copy" in doctor.stdout
    assert "gstjobs doctor --adopt" in doctor.stdout
    adopted = runner.invoke(cli, ["--dsn", copy, "doctor", "--adopt", "--reason", "moved to db2"])
    assert "confirmed as production (it was a copy: it sends from now on)" in adopted.stdout
    assert "FAIL  production copy" not in adopted.stdout

    dispatch_until_none_waits(copy)
    assert sorted(m["Message-ID"] for m in smtp.received) == sorted(
        {m["Message-ID"] for m in smtp.received}
    )  # each once
    assert len(smtp.received) == len(waiting)
    with psycopg.connect(copy) as conn:
        assert conn.execute(
            "SELECT actor, reason FROM gstjobs.audit_log WHERE action = 'installation.adopt'"
        ).fetchall() == [("postgres", "moved to db2")]
