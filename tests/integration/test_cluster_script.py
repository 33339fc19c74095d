"""scripts/cluster.sh fails fast and clearly instead of hanging."""

import os
import socket
import subprocess

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
