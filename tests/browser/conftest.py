"""Browser tests: real headless Chromium (Playwright) against the product as it runs in
production: an ASGI server (daphne) with WebSockets and a Celery worker, both separate
processes on the PostgreSQL test database and Redis.

Every test here is marked ``browser`` and ``django_db(transaction=True)``: the server and
the worker only see committed data. The server runs for the whole package (one per extra
environment, see ``process_env``); each test gets its own worker, browser contexts and an
emptied database and Redis. Users that log in through the browser come from ``loginable``
or the role fixtures overridden below: the test process hashes passwords with a fast hasher
the server does not know, so they get a hash the server can check.

Helpers (``login``, ``screenshot``, ``post_alert``) are in ``tests/browser/__init__.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import PASSWORD
from tests.processes import stop as _stop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1440, "height": 900}
TIMEOUT_MS = 20_000
SERVER_START_SECONDS = 30
SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM = pytest.StashKey[str | None]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_tests = False
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.django_db(transaction=True))
            browser_tests = True
    if browser_tests:
        config.stash[CHROMIUM] = _find_chromium()


def _find_chromium() -> str | None:
    """The Chromium the browser tests drive: ``CHROMIUM_PATH``, else the system's, else
    Playwright's own (None), downloaded here if need be. Without one, the run stops before
    any test, saying what is missing and how to install it."""
    if path := os.environ.get("CHROMIUM_PATH"):
        if not os.access(path, os.X_OK):
            pytest.exit(f"CHROMIUM_PATH={path} is not an executable Chromium.", returncode=4)
        return path
    for name in SYSTEM_CHROMIUMS:
        if path := shutil.which(name):
            return path
    # Playwright's headless shell (what it runs headless); a no-op once it is there.
    install = [sys.executable, "-m", "playwright", "install", "--only-shell", "chromium"]
    done = subprocess.run(install, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stderr + done.stdout).strip().splitlines()
        pytest.exit(
            f"Browser tests need Chromium: no CHROMIUM_PATH, no {', '.join(SYSTEM_CHROMIUMS)} "
            "on the PATH, and `playwright install --only-shell chromium` failed "
            f"({output[0] if output else f'exit code {done.returncode}'}). Install it with "
            "`apt-get install chromium` or `.venv/bin/playwright install chromium`, or set "
            "CHROMIUM_PATH.",
            returncode=4,
        )
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """On failure, attach what the server and the worker wrote during the test."""
    report = yield
    if report.failed:
        for name, read in getattr(item, "_process_logs", {}).items():
            report.sections.append((name, read() or "(no output)"))
    return report


def _attach_log(request: pytest.FixtureRequest, name: str, read: Callable[[], str]) -> None:
    request.node.__dict__.setdefault("_process_logs", {})[name] = read


# --- Processes ---------------------------------------------------------------------------


@pytest.fixture
def process_env() -> dict[str, str]:
    """Extra environment for the server and the worker; a test overrides it (AWS / moto)."""
    return {}


def _production_like(env: dict[str, str]) -> dict[str, str]:
    # The browser fixture switches Django's async-safety check off in this process; the
    # server and the worker keep it.
    return {**env, "DJANGO_ALLOW_ASYNC_UNSAFE": ""}


@pytest.fixture
def worker(
    request: pytest.FixtureRequest, celery_worker_process, process_env: dict[str, str]
) -> subprocess.Popen:
    """A real Celery worker: correlation, assignment, live signals and notifications."""
    process = celery_worker_process(**_production_like(process_env))
    os.set_blocking(process.stdout.fileno(), False)
    output: list[bytes] = []

    def read() -> str:
        output.append(process.stdout.read() or b"")
        return b"".join(output).decode(errors="replace")

    _attach_log(request, "celery worker output", read)
    return process


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_size(self) -> int:
        return self.log.stat().st_size

    def read_log(self, start: int = 0) -> str:
        with self.log.open("rb") as log:
            log.seek(start)
            return log.read().decode(errors="replace")


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(extra_env: dict[str, str], log: Path) -> Server:
    """daphne on a free port, through its ``runserver`` command: that is ``python -m
    daphne alertwhisperer.asgi:application`` plus the static files handler Django adds
    under DEBUG (bare daphne serves no static files: the pages would have no CSS or JS)."""
    port = _free_port()
    env = _production_like(
        {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "true",
            "PYTHONUNBUFFERED": "1",
            # What alertwhisperer.asgi sets for daphne; runserver reads the settings first.
            "DATABASE_CONN_MAX_AGE": "0",
            **extra_env,
        }
    )
    command = [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}:\n{server.read_log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/accounts/login/", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    _stop(process)
    pytest.fail(f"daphne did not answer within {SERVER_START_SECONDS} s:\n{server.read_log()}")


@pytest.fixture(scope="package")
def _servers(django_db_setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The package's daphne processes by extra environment, started on first use and
    stopped after the last browser test (before the test database is dropped)."""
    servers: dict[tuple, Server] = {}
    logs = tmp_path_factory.mktemp("daphne")

    def get(extra_env: dict[str, str]) -> Server:
        key = tuple(sorted(extra_env.items()))
        server = servers.get(key)
        if server is None or server.process.poll() is not None:
            server = servers[key] = _start_server(extra_env, logs / f"{len(servers)}.log")
        return server

    yield get
    for server in servers.values():
        _stop(server.process)


@pytest.fixture
def server(
    request: pytest.FixtureRequest,
    _servers,
    transactional_db,
    worker: subprocess.Popen,
    process_env: dict[str, str],
) -> Server:
    """The ASGI application (HTTP and WebSockets) with a Celery worker behind it."""
    running = _servers(process_env)
    start = running.log_size()
    _attach_log(request, "daphne log", lambda: running.read_log(start))
    return running


# --- Browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path(request: pytest.FixtureRequest) -> str | None:
    """Chromium's executable, or None for Playwright's own (see ``_find_chromium``)."""
    return request.config.stash[CHROMIUM]


@pytest.fixture(scope="package")
def browser(chromium_path: str | None):
    """Headless Chromium for the browser tests.

    Playwright's sync API keeps an asyncio loop running in this thread while it is started.
    Django takes that for async code: its async-safety check would refuse every ORM call
    (switched off meanwhile), and the ORM uses a separate set of connections, closed here
    (left open, they would keep the test database from being dropped). Stopped after the
    package, so no other test of the session runs under that loop.
    """
    from django.db import connections
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()
                connections.close_all()


@pytest.fixture
def new_page(browser, server: Server):
    """``new_page()`` opens a page in a new browser context (own cookies: one user each)."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


# --- Data --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_password_hash() -> str:
    """PASSWORD hashed with the server's default hasher (the tests use a fast one)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    return hasher.encode(PASSWORD, hasher.salt())


@pytest.fixture
def loginable(server_password_hash: str):
    """``loginable(user)``: give the user a password hash the server process can check."""
    from apps.accounts.models import User

    def make(user):
        User.objects.filter(pk=user.pk).update(password=server_password_hash)
        return user

    return make


def _named(user, full_name: str, loginable):
    user.full_name = full_name
    user.save(update_fields=["full_name"])
    return loginable(user)


@pytest.fixture
def msp_admin(msp_admin, loginable):
    return _named(msp_admin, "Morgan Price", loginable)


@pytest.fixture
def company_admin_a(company_admin_a, loginable):
    return _named(company_admin_a, "Alice Martin", loginable)


@pytest.fixture
def technician_a(technician_a, loginable):
    return _named(technician_a, "Tom Baker", loginable)
