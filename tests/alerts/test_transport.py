"""The webhook over real HTTP: chunked bodies and slow clients, against the servers of the
Procfile started by the test (granian for the webhook routes, daphne for the rest) and the
proxy recipe deploy/nginx/alertwhisperer.conf in front of both (a real nginx: it must be
installed).

Each server runs on a free port of 127.0.0.1, on the PostgreSQL test database and Redis, so
the tests commit their data (``transaction=True``). Requests are written on raw sockets: the
framing (chunks, a body that stops half way) is what is under test.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from apps.alerts.models import Alert
from apps.alerts.webhook import MAX_BODY_BYTES
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.alerts.conftest import WEBHOOK, generic
from tests.processes import stop
from tests.system_tools import system_tool

ROOT = Path(__file__).resolve().parent.parent.parent
VENV_BIN = Path(sys.executable).parent
NGINX_RECIPE = ROOT / "deploy" / "nginx" / "alertwhisperer.conf"
START_SECONDS = 30
SLOW_CLIENTS = 8
PROMPT_SECONDS = 3.0  # before the fixes: 15-20 s, or never

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    def read_log(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def procfile_argv(process: str, **options: str) -> list[str]:
    """The Procfile's command of ``process``, its ``--name=value`` options replaced by
    ``options`` (underscores for dashes), its program taken from this virtualenv."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(process)
    )
    program, *args = shlex.split(line.removeprefix(f"{process}:"))
    given = {f"--{name.replace('_', '-')}": value for name, value in options.items()}
    args = [
        f"{name}={given[name]}" if (name := arg.partition("=")[0]) in given else arg for arg in args
    ]
    return [str(VENV_BIN / Path(program).name), *args]


def granian_argv(port: int, directory: Path) -> list[str]:
    """The Procfile's ``webhooks`` line with one worker of two threads: a handful of slow
    clients was enough to occupy every thread of it."""
    return procfile_argv("webhooks", port=str(port), workers="1", blocking_threads="2")


def daphne_argv(port: int, directory: Path) -> list[str]:
    """The Procfile's ``web`` line."""
    argv = procfile_argv("web")
    argv[argv.index("-p") + 1] = str(port)
    return argv


def nginx_argv(port: int, directory: Path, upstreams: dict[str, int]) -> list[str]:
    """nginx with deploy/nginx/alertwhisperer.conf as written, moved to ``port`` and to the
    ports of the granian and daphne of this module, in a prefix of its own."""
    nginx = system_tool("nginx", package="nginx")
    recipe = NGINX_RECIPE.read_text()
    for old, new in (
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstreams['daphne']};"),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstreams['granian']};"),
    ):
        assert recipe.count(old) == 1, old
        recipe = recipe.replace(old, new)
    (directory / "alertwhisperer.conf").write_text(recipe)
    (directory / "nginx.conf").write_text(
        f"""daemon off;
user {pwd.getpwuid(os.getuid()).pw_name};
worker_processes 1;
pid {directory}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/alertwhisperer.conf;
}}
"""
    )
    return [nginx, "-p", str(directory), "-c", str(directory / "nginx.conf")]


def start_server(name: str, argv: list[str], port: int, log: Path) -> Server:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL or "",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(name=name, port=port, process=process, log=log)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{server.read_log()}")
        try:
            status, _ = exchange(port, request_head(api_key=""), [])
        except OSError:
            time.sleep(0.1)
            continue
        if status == 401:
            return server
        time.sleep(0.1)
    stop(process)
    pytest.fail(f"{name} did not answer within {START_SECONDS} s:\n{server.read_log()}")


@pytest.fixture(scope="module")
def servers(django_db_setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The module's servers by name (granian, daphne, and nginx in front of both), started
    on first use, stopped after the last test."""
    running: dict[str, Server] = {}
    directory = tmp_path_factory.mktemp("servers")

    def get(name: str) -> Server:
        if name not in running or running[name].process.poll() is not None:
            port = free_port()
            if name == "nginx":
                upstreams = {upstream: get(upstream).port for upstream in ("granian", "daphne")}
                argv = nginx_argv(port, directory, upstreams)
            else:
                argv = {"granian": granian_argv, "daphne": daphne_argv}[name](port, directory)
            running[name] = start_server(name, argv, port, directory / f"{name}.log")
        return running[name]

    yield get
    for name in ("nginx", "granian", "daphne"):
        if name in running:
            stop(running[name].process)


@pytest.fixture
def granian(servers) -> Server:
    return servers("granian")


@pytest.fixture
def api_key(transactional_db) -> str:
    _, key = company_create(company=Company(name="Acme Corp", slug="acme"))
    return key


# --- Raw HTTP ------------------------------------------------------------------------------


def request_head(*, api_key: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {WEBHOOK} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if api_key:
        lines.append(f"X-API-Key: {api_key}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(body: bytes, size: int) -> list[bytes]:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces] + [b"0\r\n\r\n"]


def read_answer(sock: socket.socket) -> tuple[int, dict]:
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    body = answer.read()
    return answer.status, json.loads(body) if body else {}


def exchange(port: int, head: bytes, parts: list[bytes], timeout: float = 10) -> tuple[int, dict]:
    """Write the head and the body parts on a new connection, then read the answer (the
    server may answer, and stop reading, before the last part)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for part in parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_answer(sock)


def send_chunked(port: int, api_key: str, body: bytes, size: int = 100) -> tuple[int, dict]:
    head = request_head(api_key=api_key, headers={"Transfer-Encoding": "chunked"})
    return exchange(port, head, chunked(body, size))


# --- Chunked bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["granian", "daphne", "nginx"])
def test_chunked_body_is_read(servers, api_key, name):
    body = json.dumps(generic(message="x" * 3000)).encode()
    status, answer = send_chunked(servers(name).port, api_key, body, size=500)
    assert (status, answer["accepted"]) == (202, 1), answer
    assert Alert.objects.get().message == "x" * 3000


@pytest.mark.parametrize("name", ["granian", "daphne", "nginx"])
def test_chunked_body_over_one_mebibyte_is_413(servers, api_key, name):
    body = json.dumps(generic(message="x" * MAX_BODY_BYTES)).encode()
    status, answer = send_chunked(servers(name).port, api_key, body, size=64 * 1024)
    assert (status, answer["error"]) == (413, "payload_too_large"), answer
    assert not Alert.objects.exists()


@pytest.mark.parametrize("name", ["granian", "nginx"])
def test_chunked_body_of_exactly_one_mebibyte_is_read(servers, api_key, name):
    body = json.dumps(generic()).encode()
    body += b" " * (MAX_BODY_BYTES - len(body))
    assert len(body) == MAX_BODY_BYTES
    status, answer = send_chunked(servers(name).port, api_key, body, size=64 * 1024)
    assert status == 202, answer


# --- Slow clients --------------------------------------------------------------------------


def open_slow_clients(port: int, api_key: str, count: int) -> list[socket.socket]:
    """``count`` connections that announce 10 kB and send the first 100 bytes of it."""
    head = request_head(api_key=api_key, headers={"Content-Length": "10000"})
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=PROMPT_SECONDS)
        sock.sendall(head + b"{" + b" " * 99)
        sockets.append(sock)
    return sockets


@pytest.mark.parametrize("key", ["", "aw_unknown_0123456789"], ids=["no key", "unknown key"])
def test_slow_clients_without_a_key_are_refused_before_their_body(granian, api_key, key, capsys):
    """Eight slow bodies once held every thread of the webhook server for as long as their
    clients liked; now the key is checked first, and a client without one gets its 401
    without the server waiting for its body. A valid webhook meanwhile gets its 202."""
    slow = open_slow_clients(granian.port, key, SLOW_CLIENTS)
    try:
        started = time.monotonic()
        for sock in slow:
            status, answer = read_answer(sock)
            assert status == 401, answer
        refused_in = time.monotonic() - started

        started = time.monotonic()
        body = json.dumps(generic()).encode()
        head = request_head(api_key=api_key, headers={"Content-Length": str(len(body))})
        status, answer = exchange(granian.port, head, [body], timeout=PROMPT_SECONDS)
        accepted_in = time.monotonic() - started
    finally:
        for sock in slow:
            sock.close()
    with capsys.disabled():
        print(
            f"\n[slow clients, granian] {SLOW_CLIENTS} slow bodies without a valid key refused in "
            f"{refused_in:.2f} s; a valid webhook meanwhile: {status} in {accepted_in:.2f} s"
        )
    assert status == 202, answer
    assert refused_in < PROMPT_SECONDS
    assert accepted_in < PROMPT_SECONDS


def test_slow_bodies_wait_in_nginx_never_in_the_webhook_server(servers, api_key, capsys):
    """Behind the proxy recipe even clients with a valid key cannot hold a granian thread
    with a slow body: nginx reads bodies before it passes requests on. A valid webhook gets
    its 202 at once, and nginx closes each stalled connection after client_body_timeout
    (its 408, which it does not send)."""
    nginx = servers("nginx")
    body_timeout = int(re.search(r"client_body_timeout (\d+)s;", NGINX_RECIPE.read_text())[1])
    slow = open_slow_clients(nginx.port, api_key, SLOW_CLIENTS)
    try:
        started = time.monotonic()
        body = json.dumps(generic()).encode()
        head = request_head(api_key=api_key, headers={"Content-Length": str(len(body))})
        status, answer = exchange(nginx.port, head, [body], timeout=PROMPT_SECONDS)
        accepted_in = time.monotonic() - started
        assert status == 202, answer
        assert accepted_in < PROMPT_SECONDS

        for sock in slow:
            sock.settimeout(body_timeout + PROMPT_SECONDS)
            assert sock.recv(1024) == b""
        timed_out_in = time.monotonic() - started
    finally:
        for sock in slow:
            sock.close()
    with capsys.disabled():
        print(
            f"\n[slow clients, nginx] a valid webhook answered in {accepted_in:.2f} s beside "
            f"{SLOW_CLIENTS} slow bodies, which nginx closed after {timed_out_in:.1f} s"
        )
    assert body_timeout - 1 < timed_out_in < body_timeout + PROMPT_SECONDS
    assert Alert.objects.count() == 1


def test_websockets_pass_through_nginx_to_daphne(servers, client, technician_a):
    """The recipe forwards the WebSocket upgrade of /ws/ (live updates, chat) to daphne."""
    nginx = servers("nginx")
    client.force_login(technician_a)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    handshake = (
        "GET /ws/live/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{nginx.port}\r\n"
        f"Origin: http://127.0.0.1:{nginx.port}\r\n"
        f"Cookie: {settings.SESSION_COOKIE_NAME}={session}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as sock:
        sock.sendall(handshake.encode())
        status_line = sock.recv(1024).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 101 Switching Protocols"
