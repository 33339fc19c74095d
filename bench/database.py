"""A fresh gstjobs database on a bench cluster (dropped, created and migrated to head), and a
free loopback port for the servers the benchmarks start beside it."""

import socket
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def recreate(admin_dsn: str, name: str, dsn: str) -> None:
    """Drop and create database `name` (pg_cron's: its launcher stops until a restart), then
    `alembic upgrade head` in it, as a DBA would."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"dsn={dsn}", "upgrade", "head"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now. Not a fixed one: a fixed port in
    the ephemeral range can be any client connection's local port at that moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
