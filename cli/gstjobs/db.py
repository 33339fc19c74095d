"""Connections: --dsn, else GSTJOBS_DSN, else libpq's own PG* variables."""

import os
import re
from typing import Any

import psycopg

DSN_ENV = "GSTJOBS_DSN"

# Hide passwords in either DSN form: postgresql://user:secret@host and password=secret.
_URI_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
# A password in a DSN that may not parse: after user: in a URI (to the last @, or the end),
# after password= (quoted to the end if the quote is never closed).
_URI_PASSWORD_LOOSE = re.compile(r"://[^:/@\[]*:(?P<secret>.+)@", re.DOTALL)
_URI_PASSWORD_TAIL = re.compile(r"://[^:/@\[]*:(?P<secret>[^@/]+)$", re.DOTALL)
_KV_PASSWORD_LOOSE = re.compile(
    r"password\s*=\s*(?:'(?P<quoted>(?:[^'\\]|\\.)*)'?|(?P<bare>\S+))", re.IGNORECASE
)


class ConnectError(Exception):
    """The database cannot be reached; the message names the target, never a password."""


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else $GSTJOBS_DSN, else '' (libpq reads PG* variables)."""
    return dsn or os.environ.get(DSN_ENV, "")


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ***."""
    return _KV_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***\2", dsn))


def passwords_in(dsn: str) -> list[str]:
    """Every text in dsn that may be a password, whether or not dsn parses."""
    found: list[str] = []
    for pattern in (_URI_PASSWORD_LOOSE, _URI_PASSWORD_TAIL, _KV_PASSWORD_LOOSE):
        for match in pattern.finditer(dsn):
            found.extend(v for v in match.groupdict().values() if v)
    return sorted(set(found), key=len, reverse=True)


def redact(message: str, dsn: str, quoted: bool = False) -> str:
    """message (a driver's error about dsn) with no password of dsn in it; quoted: nor any
    quoted part of dsn (a parser quotes what it could not read, which may hold part of one)."""
    secrets = passwords_in(dsn)
    # a password the driver split (an @ in it, unencoded) shows in pieces: hide any piece of
    # four characters or more, longest first
    pieces = {
        secret[i:j]
        for secret in secrets
        for i in range(len(secret))
        for j in range(i + min(4, len(secret)), len(secret) + 1)
    }
    for piece in sorted(pieces, key=len, reverse=True):
        message = message.replace(piece, "***")
    if secrets and quoted:
        message = re.sub(r'"[^"]*"', '"***"', message)
    return mask_dsn(message)


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
        psycopg.conninfo.conninfo_to_dict(target)
    except psycopg.ProgrammingError as error:
        raise ConnectError(
            f"the connection string is malformed: {redact(str(error).strip(), target, True)}\n"
            "hint: write it as postgresql://USER@HOST:PORT/DBNAME or 'host=... dbname=...'"
            " (keep the password in ~/.pgpass or PGPASSWORD, not in the string)"
        ) from None
    try:
        return psycopg.connect(target, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as error:
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        raise ConnectError(
            redact(f"cannot connect to {describe_target(target)}: {first_line}", target) + "\n"
            f"hint: pass --dsn or set {DSN_ENV} (for the demo cluster, `make demo` prints it)"
        ) from None
