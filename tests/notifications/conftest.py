"""Real servers for the channel tests: an SMTP server (aiosmtpd, the demo's catcher
storing .eml files) and HTTP receivers standing in for Slack, Teams and a customer's
webhook endpoint."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from apps.notifications.mailcatcher import Catcher, CaughtMail, read_mail


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Smtp:
    directory: Path
    port: int

    def mails(self) -> list[CaughtMail]:
        return [read_mail(p) for p in sorted(self.directory.glob("*.eml"))]


@pytest.fixture
def smtp(tmp_path, settings):
    directory = tmp_path / "mail"
    port = free_port()
    controller = Controller(Catcher(directory), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    yield Smtp(directory=directory, port=port)
    controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording every POST; answers the statuses in
    ``statuses`` in turn (then 200)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver(settings):
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = True
    started = []

    def start(path: str = "/hook", statuses: list[int] | None = None) -> Receiver:
        state = Receiver(url="", statuses=list(statuses or []))
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with lock:
                    state.requests.append(Received(self.path, dict(self.headers), body))
                    status = state.statuses.pop(0) if state.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver error")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append(server)
        state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        return state

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.NOTIFY_RETRY_BASE = 0.01
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RATE_LIMIT = 5
    settings.NOTIFY_RATE_WINDOW = 300
    settings.SITE_URL = "https://aw.example.test"
