"""The process supervisor of ``make run`` (alertwhisperer/supervise.py)."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.fault
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"not within {seconds} s")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def supervised(tmp_path):
    """Start the supervisor on a shell script; the script logs "<its pid> <helper pid>"."""
    started: list[subprocess.Popen] = []

    def start(script: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / "pids"
        process = subprocess.Popen(
            [sys.executable, "-m", "alertwhisperer.supervise", "sh", "-c", script, "sh", log],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process, log

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def lines(log: Path) -> list[list[int]]:
    text = log.read_text() if log.exists() else ""
    return [[int(pid) for pid in line.split()] for line in text.splitlines()]


def test_a_killed_command_is_started_again_and_its_leftovers_killed(supervised):
    supervisor, log = supervised('sleep 60 & echo "$$ $!" >> "$1"; wait')
    [[first, helper]] = wait_for(lambda: lines(log))
    psutil.Process(first).kill()
    [_, [second, _]] = wait_for(lambda: len(lines(log)) == 2 and lines(log), seconds=5)
    assert second != first
    wait_for(lambda: gone(helper))
    assert supervisor.poll() is None


def test_a_stop_signal_reaches_the_command_and_ends_the_loop(supervised):
    script = 'trap \'exit 3\' TERM; echo "$$ 0" >> "$1"; while :; do sleep 0.1; done'
    supervisor, log = supervised(script)
    [[pid, _]] = wait_for(lambda: lines(log))
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=10) == 3
    assert gone(pid)
    assert len(lines(log)) == 1


def test_a_command_that_keeps_failing_is_retried_with_growing_delays(supervised):
    supervisor, log = supervised('echo "$$ 0" >> "$1"; exit 1')
    wait_for(lambda: len(lines(log)) >= 3, seconds=8)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=5) == 1
    _, stderr = supervisor.communicate()
    assert "restart in 1 s" in stderr
    assert "restart in 2 s" in stderr
