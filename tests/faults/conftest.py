"""The production stack on private services, for breaking them on purpose: a Redis and a
PostgreSQL of their own (temporary directories, free ports on 127.0.0.1, torn down at the
end even on failure), the webhook server (granian), and a Celery worker and beat, each
under the supervisor of ``make run``. The machine's shared PostgreSQL and Redis are never
touched."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from cryptography.fernet import Fernet

from scripts.services import pg_bin_dir

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# PostgreSQL's binaries come with the pgserver package (a dev dependency), found without
# importing it (its import sets up state this suite does not use).
POSTGRES_USER = "nobody" if os.geteuid() == 0 else None
PG_BIN = pg_bin_dir(POSTGRES_USER)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fault: breaks a real service (Redis, PostgreSQL, a worker) on purpose"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {seconds} s")


def accepts_connections(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: accepts_connections(self.port), 10, "Redis start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class PrivatePostgres:
    """initdb refuses to run as root: as root, the cluster belongs to ``nobody``."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.data = directory / "data"
        self.user = POSTGRES_USER
        if self.user:
            shutil.chown(directory, user=self.user)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/alertwhisperer"

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, user=self.user, capture_output=True, cwd=self.directory)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")
        self.start()
        with psycopg.connect(self.url.replace("/alertwhisperer", "/postgres")) as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE alertwhisperer")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


class Supervised:
    """A process of the stack under alertwhisperer/supervise.py, its output in a file."""

    def __init__(self, name: str, command: list[str], env: dict, logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "alertwhisperer.supervise", *command],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def child(self) -> psutil.Process | None:
        """The supervised process itself (not the supervisor), if it is running."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children():
                if child.status() != psutil.STATUS_ZOMBIE:
                    return child
        return None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child = self.child()
                if child:
                    os.killpg(child.pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()


class Stack:
    def __init__(self, redis: PrivateRedis, postgres: PrivatePostgres, directory: Path):
        self.redis = redis
        self.postgres = postgres
        self.directory = directory
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            # Plain HTTP on 127.0.0.1: no TLS proxy in front.
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
        self.processes: list[Supervised] = []
        self.tenants: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/webhooks/alerts"

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def prepare(self, companies: int) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.tenants = json.loads(
            self.manage("shell", "--no-imports", "-c", SEED.format(companies=companies))
        )

    def start(self) -> None:
        celery = [str(VENV_BIN / "celery"), "-A", "alertwhisperer"]
        self.webhooks = self._start(
            "webhooks",
            [
                *(str(VENV_BIN / "granian"), "--interface=wsgi", "--host=127.0.0.1"),
                *(f"--port={self.port}", "--workers=1", "--blocking-threads=2", "--no-ws"),
                *("--log-level=warning", "alertwhisperer.webhooks_wsgi:application"),
            ],
        )
        self.worker = self._start(
            "worker", [*celery, "worker", "--loglevel=INFO", "--concurrency=2"]
        )
        self.beat = self._start(
            "beat",
            [*celery, "beat", "--loglevel=INFO", f"--schedule={self.directory / 'beat'}"],
        )
        wait_until(lambda: accepts_connections(self.port), 30, "webhook server start")
        wait_until(lambda: "ready." in self.worker.output(), 60, "worker start")

    def _start(self, name: str, command: list[str]) -> Supervised:
        process = Supervised(name, command, self.env, self.directory)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(self.postgres.url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


# Companies with HMAC on and room for the stream in their rate limits; prints their keys.
SEED = """
import json
from apps.tenants.models import Company
from apps.tenants.services import company_create, hmac_enable
out = []
for n in range({companies}):
    company, key = company_create(company=Company(
        name=f"Fault {{n}}", slug=f"fault-{{n}}",
        rate_limit_per_minute=1000, rate_limit_burst=10000,
    ))
    out.append({{"id": company.pk, "key": key, "secret": hmac_enable(company=company)}})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    directory = Path(tempfile.mkdtemp(prefix="aw-faults-"))
    directory.chmod(0o755)
    redis = PrivateRedis(directory / "redis")
    (directory / "redis").mkdir()
    (directory / "pg").mkdir()
    postgres = PrivatePostgres(directory / "pg")
    stack = Stack(redis, postgres, directory)
    try:
        redis.start()
        postgres.init()
        stack.prepare(companies=2)
        stack.start()
        yield stack
    finally:
        stack.stop()
        redis.stop()
        postgres.stop()
        shutil.rmtree(directory, ignore_errors=True)
