"""Stopping the server and worker processes tests start."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, *, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; reaped."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
