"""The script sent to SSM, and reading its health check back from the output."""

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from apps.runbooks.models import Runbook
from apps.runbooks.script import build_script, clip, health_check_result


def runbook(**fields) -> Runbook:
    return Runbook(name="t", signature_pattern="x", actions=["echo restarting"], **fields)


def run(script: str) -> tuple[int, str]:
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=20)
    return done.returncode, done.stdout


@pytest.mark.parametrize(
    ("exit_code", "expected", "passes"), [(0, 0, True), (3, 3, True), (1, 0, False)]
)
def test_command_health_check_runs_in_bash(exit_code, expected, passes):
    rb = runbook(
        health_check_type="command",
        health_check_command=f"(exit {exit_code})",
        health_check_exit_code=expected,
    )
    code, output = run(build_script(rb))
    assert (code == 0) is passes
    assert health_check_result(rb, output) is passes


def test_failing_action_stops_before_the_health_check():
    rb = runbook(health_check_type="command", health_check_command="true")
    rb.actions = ["false", "echo never"]
    code, output = run(build_script(rb))
    assert code != 0 and "never" not in output
    assert health_check_result(rb, output) is None


@pytest.fixture
def local_http():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize(("path", "passes"), [("/healthz", True), ("/broken", False)])
def test_http_health_check_runs_curl_against_the_url(local_http, path, passes):
    rb = runbook(
        health_check_type="http", health_check_url=local_http + path, health_check_status=200
    )
    code, output = run(build_script(rb))
    assert (code == 0) is passes
    assert health_check_result(rb, output) is passes


def test_health_check_url_cannot_inject_shell():
    rb = runbook(health_check_type="http", health_check_url="http://x/?a=$(touch /tmp/aw-pwned)")
    assert "'http://x/?a=$(touch /tmp/aw-pwned)'" in build_script(rb)


def test_http_health_check_reads_the_status_marker():
    rb = runbook(
        health_check_type="http",
        health_check_url="http://localhost/healthz",
        health_check_status=200,
    )
    assert health_check_result(rb, "restarting\nAW_HEALTH_STATUS=200\n") is True
    assert health_check_result(rb, "AW_HEALTH_STATUS=503\n") is False
    assert health_check_result(rb, "AW_HEALTH_STATUS=000\n") is False


def test_no_health_check_reports_nothing():
    assert health_check_result(runbook(), "anything") is None


def test_long_output_is_clipped_in_the_middle():
    text = "a" * 20000 + "b" * 20000
    clipped = clip(text)
    assert len(clipped) < 25000 and clipped.startswith("a") and clipped.endswith("b")
    assert "truncated" in clipped
