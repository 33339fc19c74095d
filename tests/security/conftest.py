"""The attackers and what they aim at: a login for each role (operator, administrator, firm
application, runner, and one with no grants at all), listeners on loopback that must never
receive a secret, and a check that a refused attack changed no table."""

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from bench.database import free_port
from tests.conftest import ADMIN, OPERATOR, as_login, login_role, table_digests
from tests.delivery.conftest import SmtpSink, WhatsAppApi
from tests.integration.conftest import FIRM

APP = "gstjobs_test_app"
NOBODY = "gstjobs_test_nobody"
RUNNER = "gstjobs_runner"  # pg_cron's role: LOGIN, no password (the test cluster trusts loopback)

SMTP_PASSWORD = "smtp-app-password-7Qz"
TOKEN = "EAAG-whatsapp-token-3Kp"


@pytest.fixture(scope="session")
def logins(operator_role: str, admin_role: str, server: str) -> dict[str, str]:
    """role -> login: each attacker, created once for the cluster."""
    login_role(server, APP, "gstjobs_app")
    login_role(server, NOBODY)
    return {
        "operator": OPERATOR,
        "admin": ADMIN,
        "app": APP,
        "nobody": NOBODY,
        "runner": RUNNER,
    }


Connect = Callable[[str], psycopg.Connection[Any]]


@pytest.fixture
def connect_as(db: str, logins: dict[str, str]) -> Iterator[Connect]:
    """connect_as('operator'): an autocommit connection to the test's database as that login;
    the firm application's has app.tenant_id = 1."""
    opened: list[psycopg.Connection[Any]] = []

    def connect(role: str) -> psycopg.Connection[Any]:
        options = "-c app.tenant_id=1" if role == "app" else ""
        conn = psycopg.connect(as_login(db, logins[role]), autocommit=True, options=options)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@contextlib.contextmanager
def nothing_changes(dsn: str) -> Iterator[None]:
    """Every toolkit and firm table, and cron.job, the same after as before."""
    before = table_digests(dsn)
    yield
    after = table_digests(dsn)
    assert {t for t in before if before[t] != after.get(t)} == set()


def refused(conn: psycopg.Connection[Any], statement: str, sqlstate: str, text: str = "") -> None:
    """statement fails with this SQLSTATE (and message text)."""
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(statement.encode())
    assert raised.value.sqlstate == sqlstate, raised.value
    assert text in str(raised.value), raised.value


# ------------------------------------------------------------------ listeners ----------------


class SpySmtp:
    """An SMTP server on 127.0.0.1 that takes every login and message and keeps them: what an
    attacker would run to collect the password."""

    def __init__(self) -> None:
        self.port = free_port()
        self.logins: list[tuple[str, str]] = []
        self.messages: list[bytes] = []
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            auth_required=False,
            auth_require_tls=False,
            authenticator=self.authenticate,
        )

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 2.0.0 Ok"


class SpyHttp(BaseHTTPRequestHandler):
    """An HTTP server on 127.0.0.1 that answers every request as WhatsApp would, keeping the
    headers: where a bearer token would show."""

    requests: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.requests.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"messages": [{"id": "wamid.spy"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def spy_smtp() -> Iterator[SpySmtp]:
    spy = SpySmtp()
    spy.controller.start()
    yield spy
    spy.controller.stop()


@pytest.fixture
def spy_http() -> Iterator[tuple[str, type[SpyHttp]]]:
    handler = type("Spy", (SpyHttp,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v19.0/1", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def delivering(
    conn: psycopg.Connection[Any],
) -> Iterator[tuple[psycopg.Connection[Any], SmtpSink, type[WhatsAppApi]]]:
    """The hand-made firm with gstjobs delivering to real servers of its own on loopback: an
    SMTP server that requires the password, a WhatsApp API; both credentials set."""
    from http.server import ThreadingHTTPServer as Server

    smtp = SmtpSink()
    smtp.start(login=("alerts", SMTP_PASSWORD))
    api = type("Api", (WhatsAppApi,), {"script": [], "requests": []})
    server = Server(("127.0.0.1", 0), api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}/v19.0/1234567890"
    conn.execute(FIRM.encode())
    conn.execute(
        "SELECT gstjobs.set_settings(%s::jsonb)",
        (
            psycopg.types.json.Jsonb(
                {
                    "smtp.host": "127.0.0.1",
                    "smtp.port": str(smtp.port),
                    "smtp.user": "alerts",
                    "smtp.password": SMTP_PASSWORD,
                    "smtp.from": "alerts@mehta.example.in",
                    "whatsapp.url": api.url,
                    "whatsapp.token": TOKEN,
                }
            ),
        ),
    )
    try:
        yield conn, smtp, api
    finally:
        smtp.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture
def firm(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The hand-made firm (tests/integration/conftest.py), as a superuser connection."""
    conn.execute(FIRM.encode())
    return conn
