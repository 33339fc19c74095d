"""Real servers on loopback for delivery tests: an SMTP server and a WhatsApp-shaped HTTP API.

Both record what they receive and can be told how to answer; both listen on 127.0.0.1 only.
"""

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from bench.database import free_port
from tests.integration.conftest import FIRM

TOKEN = "EAAG-test-token-9f8e7d6c5b4a"


class SmtpSink:
    """aiosmtpd on 127.0.0.1: answers 250, or 451/550 when told, or blocks, or is down."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Message] = []
        self.raw: list[bytes] = []  # each accepted message as it came, line endings and all
        self.answer = "250 2.0.0 Ok: queued"
        self.block = threading.Event()  # set: DATA waits until unblock() (a slow server)
        self.blocked = threading.Event()  # set by the server once a DATA is waiting
        self.block_from = 1  # the first DATA (counted from 1) that block holds
        self.data_calls = 0
        self.delay = 0.0  # seconds each DATA takes (a relay's latency)
        self.active = 0  # DATA commands under way now, and the most at once
        self.most_active = 0
        self.accepted_at: list[float] = []  # time.monotonic() of each acceptance
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_calls += 1
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            return await self.answer_data(envelope)
        finally:
            self.active -= 1

    async def answer_data(self, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.block.is_set() and self.data_calls >= self.block_from:
            self.blocked.set()
            while self.block.is_set():
                await asyncio.sleep(0.05)
        if self.answer.startswith("250"):
            self.received.append(message_from_bytes(envelope.content))
            self.raw.append(envelope.original_content or envelope.content)
            self.accepted_at.append(time.monotonic())
            return f"{self.answer} as {len(self.received)}"
        return self.answer

    def start(
        self,
        login: tuple[str, str] | None = None,
        tls: str = "none",
        certificate: tuple[str, str] | None = None,
    ) -> None:
        """Listen; with login, require AUTH with that user and password (over plain TCP);
        with tls 'starttls' or 'tls' (implicit), speak TLS with the given certificate."""
        options: dict[str, Any] = {}
        if login is not None:
            options = {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": self.authenticator(login),
            }
        if tls != "none":
            assert certificate is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            options |= (
                {"tls_context": context, "require_starttls": True}
                if tls == "starttls"
                else {"ssl_context": context}
            )
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    @staticmethod
    def authenticator(login: tuple[str, str]) -> Any:
        def check(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            given = (data.login.decode(), data.password.decode())
            return AuthResult(success=given == login)

        return check

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.received]


class WhatsAppApi(BaseHTTPRequestHandler):
    """POST .../messages: answers the next scripted (status, headers, body), else 200."""

    # each test gets a subclass with lists of its own (see the whatsapp fixture)
    script: ClassVar[list[tuple[int, dict[str, str], dict[str, Any]]]] = []
    requests: ClassVar[list[dict[str, Any]]] = []
    url: ClassVar[str] = ""
    delay: ClassVar[float] = 0.0  # seconds each answer takes, as a provider's does

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.requests.append(
            {
                "at": time.monotonic(),
                "path": self.path,
                "headers": dict(self.headers),
                "json": json.loads(self.rfile.read(length)),
            }
        )
        status, headers, body = (
            self.script.pop(0)
            if self.script
            else (200, {}, {"messages": [{"id": f"wamid.{len(self.requests)}"}]})
        )
        if status == 200 and self.empty_parameter(self.requests[-1]["json"]):
            # as WhatsApp does: a template message with an empty parameter is refused
            status, headers = 400, {}
            body = {"error": {"code": 132000, "message": "(#132000) Parameter is empty"}}
        payload = json.dumps(body).encode()
        time.sleep(self.delay)
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    @staticmethod
    def empty_parameter(payload: dict[str, Any]) -> bool:
        components = payload.get("template", {}).get("components", [])
        return any(
            not str(parameter.get("text", "")).strip()
            for component in components
            for parameter in component.get("parameters", [])
        )

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.block.clear()
    sink.stop()


@pytest.fixture
def whatsapp() -> Iterator[type[WhatsAppApi]]:
    handler = type("Api", (WhatsAppApi,), {"script": [], "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/v19.0/1234567890"
    yield handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def outbox(
    conn: psycopg.Connection[Any], smtp: SmtpSink, whatsapp: type[WhatsAppApi]
) -> psycopg.Connection[Any]:
    """The hand-made firm, with gstjobs pointed at the loopback servers."""
    conn.execute(FIRM.encode())
    for key, value in {
        "smtp.host": "127.0.0.1",
        "smtp.port": str(smtp.port),
        "smtp.from": "alerts@mehta.example.in",
        "whatsapp.url": whatsapp.url,
        "whatsapp.token": TOKEN,  # type: ignore[attr-defined]
    }.items():
        conn.execute("SELECT gstjobs.set_setting(%s, %s)", (key, value))
    return conn


def add(
    conn: psycopg.Connection[Any],
    count: int,
    channel: str = "email",
    urgency: int = 5,
    tenant: int | None = 1,
    start: int = 0,
) -> list[int]:
    """count pending notifications, like the jobs write them."""
    recipient = "aarav@mehta.example.in" if channel == "email" else "+919800000003"
    rows = conn.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body,"
        " template, urgency, dedupe_key)"
        " SELECT %s, 'hearing-reminder', %s, %s, 'Hearing tomorrow: SCN/73/2025-26/' || g,"
        " 'Case SCN/73/2025-26/' || g || ' is listed tomorrow, Fri 20 Nov 2026, 10:30 IST.',"
        " jsonb_build_object('name', 'hearing-reminder', 'params',"
        "   jsonb_build_object('case_reference', 'SCN/73/2025-26/' || g, 'when', 'tomorrow')),"
        " %s, 'test:' || %s || ':' || g FROM generate_series(%s::int, %s::int) AS g RETURNING id",
        (tenant, channel, recipient, urgency, channel, start + 1, start + count),
    ).fetchall()
    return [int(r[0]) for r in rows]


def statuses(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return dict(
        conn.execute("SELECT status, count(*) FROM gstjobs.notifications GROUP BY 1").fetchall()
    )


@pytest.fixture(scope="session")
def certificate() -> Iterator[tuple[str, str]]:
    """A self-signed certificate for 127.0.0.1, readable by the database server's user."""
    import os
    import shutil
    import subprocess
    import tempfile

    folder = tempfile.mkdtemp(prefix="gstjobs-tls-")
    os.chmod(folder, 0o755)
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    os.chmod(cert, 0o644)
    yield cert, key
    shutil.rmtree(folder)
