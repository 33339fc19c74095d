"""What a DBA's server may lack, said before anything changes: a server whose PostgreSQL has
no PL/Python and no pg_cron extension files (an installation made for this test, the real
binaries with those files left out), and then one without pg_cron preloaded. `alembic upgrade
head` stops with one line and the fix for each, no traceback, nothing created; `gstjobs doctor
--preflight` says the same. (Wrong database and not a superuser: tests/migration/test_round_trip.py.)"""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.conftest import PORT, ROOT

NAME, CLUSTER_PORT, DATABASE = "preflight-test", PORT + 5, "lawfirm"
DSN = f"postgresql://postgres@127.0.0.1:{CLUSTER_PORT}/{DATABASE}"
PG_LIB, PG_SHARE = Path("/usr/lib/postgresql/15"), Path("/usr/share/postgresql/15")
LEFT_OUT = ("plpython3u", "pg_cron")  # extension files whose names contain these


def installation_without_extensions(root: Path) -> Path:
    """PostgreSQL 15 as Debian lays it out, under root, without LEFT_OUT's extension files.
    The binaries are copies (PostgreSQL finds its share directory relative to where the
    postgres binary really is); everything else links to the real files."""
    lib, share = root / PG_LIB.relative_to("/"), root / PG_SHARE.relative_to("/")
    shutil.copytree(PG_LIB / "bin", lib / "bin")
    (lib / "lib").symlink_to(PG_LIB / "lib")
    share.mkdir(parents=True)
    for entry in PG_SHARE.iterdir():
        if entry.name != "extension":
            (share / entry.name).symlink_to(entry)
    (share / "extension").mkdir()
    for control in (PG_SHARE / "extension").iterdir():
        if not any(name in control.name for name in LEFT_OUT):
            (share / "extension" / control.name).symlink_to(control)
    return lib


@pytest.fixture(scope="module")
def bare_server(server: str) -> Iterator[dict[str, str]]:
    """A cluster of that installation, pg_cron preloaded for DATABASE; its environment."""
    # readable by the server's OS user (as root, the cluster runs as postgres)
    root = Path(tempfile.mkdtemp(prefix="gstjobs-bare-pg-"))
    root.chmod(0o755)
    env = {
        **os.environ,
        "GSTJOBS_PORT": str(CLUSTER_PORT),
        "GSTJOBS_CRON_DB": DATABASE,
        "GSTJOBS_PG_DIR": str(installation_without_extensions(root)),
    }
    script = str(ROOT / "scripts" / "cluster.sh")
    try:
        subprocess.run([script, "start", NAME], env=env, check=True)
        with psycopg.connect(DSN.replace(DATABASE, "postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield env
    finally:
        subprocess.run([script, "stop", NAME], env=env, check=True)
        subprocess.run([script, "remove", NAME], env=env, check=True)
        shutil.rmtree(root)


def upgrade_refused() -> list[str]:
    """alembic upgrade head's last words, after checking that it failed and changed nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"dsn={DSN}", "upgrade", "head"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    with psycopg.connect(DSN) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('gstjobs', 'litigation', 'cron')"
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_extension").fetchone() == (1,)  # plpgsql
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname ~ '^gstjobs_'").fetchone()
    return result.stderr.strip().splitlines()


def preflight() -> str:
    shown = CliRunner().invoke(cli, ["--dsn", DSN, "doctor", "--preflight"])
    assert shown.exit_code == 1, shown.output
    return shown.stdout


def test_missing_packages_are_named_with_the_package_to_install(
    bare_server: dict[str, str],
) -> None:
    assert upgrade_refused()[-4:] == [
        "gstjobs: pg_cron installed on the server: no (missing)",
        "  fix: install the Debian package postgresql-15-cron (apt-get install postgresql-15-cron)",
        "gstjobs: plpython3u installed on the server: no (missing)",
        "  fix: install the Debian package postgresql-plpython3-15"
        " (apt-get install postgresql-plpython3-15)",
    ]
    shown = preflight()
    assert "FAIL  pg_cron installed on the server: missing" in shown
    assert "FAIL  plpython3u installed on the server: missing" in shown
    assert "ok    pg_cron preloaded" in shown


def test_pg_cron_not_preloaded_is_named_with_the_settings_and_the_restart(
    bare_server: dict[str, str],
) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        # a server that preloads another library, not pg_cron
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    script = str(ROOT / "scripts" / "cluster.sh")
    subprocess.run([script, "restart", NAME], env=bare_server, check=True)
    said = upgrade_refused()
    assert "gstjobs: pg_cron preloaded: no (pg_cron is not in shared_preload_libraries)" in said
    assert (
        "  fix: add pg_cron to shared_preload_libraries in postgresql.conf, set"
        " cron.database_name to the database gstjobs goes into, and restart the server"
    ) in said
    assert "FAIL  pg_cron preloaded: pg_cron is not in shared_preload_libraries" in preflight()
