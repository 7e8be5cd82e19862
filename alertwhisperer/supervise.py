"""Keep one process running: ``python -m alertwhisperer.supervise <command> [<arg> …]``.

honcho (``make run``) starts the Procfile's processes but never restarts one that exits, so
a worker that died stayed dead until someone noticed. Each Procfile line runs under this
loop instead, which does for ``make run`` what ``Restart=always`` does in the systemd units
of ``deploy/systemd/``:

1. the command runs in a process group of its own;
2. when it exits, whatever it left in that group is killed (a Celery worker killed with
   SIGKILL leaves its pool processes behind, holding tasks), and the command is started
   again after 1 s, doubling up to 30 s while it keeps dying within a minute of its start;
3. SIGTERM, SIGINT and SIGHUP are passed on to the command, and the loop ends with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# A command that ran this long before exiting is restarted after FIRST_DELAY again.
STEADY_SECONDS = 60.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _say(message: str) -> None:
    print(f"supervise[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _exit_status(status: int) -> int:
    """Popen's -N (killed by signal N) as a shell reports it: 128 + N."""
    return status if status >= 0 else 128 - status


def supervise(command: list[str]) -> int:
    """Run ``command`` until a stop signal arrives; return its last exit status."""
    stopped = threading.Event()
    child: subprocess.Popen | None = None

    def on_stop(signum: int, frame: object) -> None:
        stopped.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_stop)
    delay = FIRST_DELAY
    while True:
        started = time.monotonic()
        # The command is the operator's own (a Procfile line), not outside input.
        child = subprocess.Popen(command, start_new_session=True)  # noqa: S603
        if stopped.is_set():  # the stop signal came before ``child`` was this one
            child.terminate()
        _say(f"started {command[0]} as {child.pid}")
        status = child.wait()
        _kill_group(child.pid)
        if stopped.is_set():
            return _exit_status(status)
        if time.monotonic() - started >= STEADY_SECONDS:
            delay = FIRST_DELAY
        _say(f"{command[0]} ({child.pid}) exited with status {status}; restart in {delay:.0f} s")
        if stopped.wait(delay):
            return _exit_status(status)
        delay = min(delay * 2, MAX_DELAY)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m alertwhisperer.supervise <command> [<arg> …]")
    sys.exit(supervise(sys.argv[1:]))
