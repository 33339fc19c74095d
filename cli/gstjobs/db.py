"""Connections: --dsn, else GSTJOBS_DSN, else libpq's own PG* variables."""

import os
import re
from typing import Any

import psycopg

DSN_ENV = "GSTJOBS_DSN"

# Hide passwords in either DSN form: postgresql://user:secret@host and password=secret.
_URI_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class ConnectError(Exception):
    """The database cannot be reached; the message names the target, never a password."""


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else $GSTJOBS_DSN, else '' (libpq reads PG* variables)."""
    return dsn or os.environ.get(DSN_ENV, "")


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***."""
    return _KV_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***\2", dsn))


def describe_target(dsn: str) -> str:
    """Where a DSN points, for messages: 'user@host:port/dbname'."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return mask_dsn(dsn)
    user = info.get("user") or os.environ.get("PGUSER") or "(default user)"
    host = info.get("host") or os.environ.get("PGHOST") or "(default host)"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = info.get("dbname") or os.environ.get("PGDATABASE") or "(default database)"
    return f"{user}@{host}:{port}/{dbname}"


def connect(dsn: str | None = None, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """Open a connection or raise ConnectError with a message fit for a person."""
    target = resolve_dsn(dsn)
    try:
        return psycopg.connect(target, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as error:
        first_line = mask_dsn(str(error).strip().splitlines()[0]) if str(error).strip() else ""
        raise ConnectError(
            f"cannot connect to {describe_target(target)}: {first_line}\n"
            f"hint: pass --dsn or set {DSN_ENV} (make demo prints the line to use)"
        ) from None
