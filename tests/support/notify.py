"""Real receivers of notifications, on loopback: a webhook receiver (http.server) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.servers import free_port


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """Records each POST (headers, raw body) and answers `status`; `start` and `stop` it on a fixed port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.status = 200
        self.received: list[Delivery] = []
        self.answered: list[int] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status
                receiver.answered.append(status)
                if 200 <= status < 300:
                    receiver.received.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


@contextmanager
def webhook_receiver(*, started: bool = True) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    if started:
        receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@dataclass
class Mailbox:
    """What the SMTP server took: each message, and the logins it saw."""

    host: str
    port: int
    user: str
    password: str
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://{self.user}:{self.password}@{self.host}:{self.port}"


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.box.messages.append(message)
        self.box.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@contextmanager
def smtp_server(user: str = "studio", password: str = "pa55-word-NEVER-logged-7f3a") -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on loopback that takes a login (AUTH PLAIN/LOGIN, no TLS; `logins` records it)."""
    box = Mailbox("127.0.0.1", free_port(), user, password)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            user.encode(),
            password.encode(),
        )
        if ok:
            box.logins.append(user)
        return AuthResult(success=ok)

    controller = Controller(
        _Handler(box), hostname=box.host, port=box.port, authenticator=authenticate, auth_required=False,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
