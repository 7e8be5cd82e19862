"""Real servers for the channel tests: an SMTP server (aiosmtpd with the demo's catcher,
storing .eml files) and HTTP receivers standing in for Slack, Teams and a customer's
webhook endpoint. Used by the fixtures in conftest.py and by the browser tests."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
    controller: Controller

    def mails(self) -> list[CaughtMail]:
        return [read_mail(p) for p in sorted(self.directory.glob("*.eml"))]


def start_smtp(directory: Path) -> Smtp:
    port = free_port()
    controller = Controller(Catcher(directory), hostname="127.0.0.1", port=port)
    controller.start()
    return Smtp(directory=directory, port=port, controller=controller)


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

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver(path: str = "/hook", statuses: list[int] | None = None) -> Receiver:
    state = Receiver(statuses=list(statuses or []))
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

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=state.server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{state.server.server_address[1]}{path}"
    return state
