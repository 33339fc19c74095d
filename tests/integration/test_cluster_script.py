"""scripts/cluster.sh fails fast and clearly instead of hanging."""

import os
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest

from bench.database import free_port
from tests.conftest import PORT, ROOT


def cluster_sh(*args: str, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "cluster.sh"), *args],
        env={**os.environ, "GSTJOBS_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_taken_port_is_refused_with_a_clear_message() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = cluster_sh("start", "port-taken-check", port=port)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken by another program" in result.stderr
    assert "GSTJOBS_PORT" in result.stderr
    assert cluster_sh("status", "port-taken-check", port=port).returncode == 3


def test_a_running_cluster_is_not_started_twice_on_another_port(server: str) -> None:
    result = cluster_sh("start", "test", port=PORT + 1000)
    assert result.returncode == 1
    assert f"already runs on port {PORT}" in result.stderr


def test_status_names_the_log(server: str) -> None:
    result = cluster_sh("status", "test", port=PORT)
    assert result.returncode == 0
    assert "server.log" in result.stdout


@pytest.mark.parametrize(
    ("missing", "package"),
    [
        ("bin/postgres", "postgresql-15"),
        ("lib/pg_cron.so", "postgresql-15-cron"),
        ("lib/plpython3.so", "postgresql-plpython3-15"),
    ],
)
def test_a_missing_package_is_named(tmp_path: Path, missing: str, package: str) -> None:
    # a copy of the PostgreSQL directory layout with one piece missing
    for piece in ("bin/postgres", "lib/pg_cron.so", "lib/plpython3.so"):
        if piece != missing:
            (tmp_path / piece).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / piece).write_text("")
            (tmp_path / piece).chmod(0o755)
    result = subprocess.run(
        [str(ROOT / "scripts" / "cluster.sh"), "start", "missing-package-check"],
        env={**os.environ, "GSTJOBS_PG_DIR": str(tmp_path), "GSTJOBS_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert package in result.stderr and "install-deps.sh" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="creates a user to run the script as one")
def test_a_user_without_root_runs_a_cluster_of_its_own(tmp_path: Path) -> None:
    user = "gstjobs-tester"
    subprocess.run(["userdel", "--remove", user], capture_output=True)  # a leftover, if any
    subprocess.run(["useradd", "--system", "--create-home", user], check=True)
    home = Path(
        subprocess.run(
            ["getent", "passwd", user], capture_output=True, text=True, check=True
        ).stdout.split(":")[5]
    )
    port = str(free_port())
    script = str(ROOT / "scripts" / "cluster.sh")
    # the checkout may sit where the user cannot read (under /root): run a copy of the script
    copy = home / "cluster.sh"
    copy.write_text(Path(script).read_text())
    copy.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GSTJOBS_PORT": port}

    def as_user(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", user, "--", str(copy), *args, "mine"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        started = as_user("start")
        assert started.returncode == 0, started.stderr
        assert f"{home}/.local/state/gstjobs/mine/server.log" in started.stdout
        owner = subprocess.run(
            ["stat", "-c", "%U", f"{home}/.local/state/gstjobs/mine/data"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert owner == user
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as conn:
            assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_cron",)
    finally:
        as_user("stop")
        as_user("remove")
        subprocess.run(["userdel", "--remove", user], capture_output=True)
