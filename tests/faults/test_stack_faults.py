"""Webhooks keep flowing while the stack breaks underneath (issue 15): a stream of signed
deliveries to the real webhook server while (a) Redis restarts, (b) the worker is killed
with SIGKILL, (c) PostgreSQL restarts. The sender behaves like a monitoring tool: it sends
each delivery (its own X-Delivery-ID) until it is accepted, waiting a little after a 503 or
a refused connection, and signing again when told its signature cannot be proven fresh.

Each scenario asserts that every accepted delivery is stored exactly once and correlated
within a bound, that no 5xx but 503 was answered and no 503 was answered for a delivery that
was stored (its later retry would then be a duplicate), and that the worker is alive
afterwards: the same process after a Redis or PostgreSQL restart (it reconnected instead of
exiting), a new one after SIGKILL (the supervisor started it again). The figures are
printed for the record."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pytest

from tests.faults.conftest import (
    VENV_BIN,
    Stack,
    Supervised,
    accepts_connections,
    free_port,
    wait_until,
)

pytestmark = pytest.mark.fault

RATE = 25  # deliveries per second, open loop
SECONDS = 12  # of stream
SENDERS = 4
FAULT_AFTER = 2.0  # seconds into the stream
GIVE_UP_AFTER = 60.0  # a delivery not accepted by then counts as lost by the tool
CORRELATION_BOUND = 45.0  # seconds after the stream: beat sweeps every 15 s


@dataclass
class Figures:
    attempts: int = 0
    accepted: int = 0
    unavailable: int = 0
    server_errors: int = 0
    unproven: int = 0
    refused_connections: int = 0
    others: Counter = field(default_factory=Counter)
    duplicates: int = 0
    gave_up: int = 0
    alert_ids: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, name: str, lost: int, stuck: int, correlated_in: float) -> str:
        return (
            f"\n[fault {name}] requests {self.attempts}, 2xx {self.accepted}, "
            f"503 {self.unavailable}, other 5xx {self.server_errors}, "
            f"401 re-sign {self.unproven}, refused connections {self.refused_connections}, "
            f"other {dict(self.others)}; deliveries {len(self.alert_ids)} accepted, "
            f"{self.gave_up} given up, lost {lost}, stuck {stuck}, "
            f"all correlated {correlated_in:.1f} s after the stream"
        )


def signed_request(stack: Stack, tenant: dict, body: bytes, delivery_id: str):
    timestamp = str(int(time.time()))
    digest = hmac.new(tenant["secret"].encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "X-API-Key": tenant["key"],
        "X-Timestamp": timestamp,
        "X-Signature": f"sha256={digest.hexdigest()}",
    }
    if delivery_id:
        headers["X-Delivery-ID"] = delivery_id
    return urllib.request.Request(stack.url, data=body, headers=headers, method="POST")


def post(request: urllib.request.Request) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {}
    except OSError:
        return 0, {}


def deliver(stack: Stack, figures: Figures, tag: str, n: int) -> None:
    tenant = stack.tenants[n % len(stack.tenants)]
    delivery_id = f"{tag}-{n}"
    body = json.dumps(
        {
            "asset_name": f"srv-{n % 10:02d}",
            "signature": f"check_{n % 3}",
            "severity": "high",
            "message": f"{tag} #{n}",
            "tool_source": "Zabbix",
        }
    ).encode()
    deadline = time.monotonic() + GIVE_UP_AFTER
    while time.monotonic() < deadline:
        status, answer = post(signed_request(stack, tenant, body, delivery_id))
        with figures.lock:
            figures.attempts += 1
            if 200 <= status < 300:
                figures.accepted += 1
                figures.duplicates += bool(answer.get("duplicate"))
                figures.alert_ids[delivery_id] = answer["alert_ids"]
            elif status == 503:
                figures.unavailable += 1
            elif status >= 500:
                figures.server_errors += 1
            elif status == 401 and answer.get("error") == "signature_unproven":
                figures.unproven += 1
            elif status == 0:
                figures.refused_connections += 1
            else:
                figures.others[status] += 1
        if 200 <= status < 300:
            return
        if status == 401 and answer.get("error") == "signature_unproven":
            continue  # signed again with the current time
        if status not in (0, 429) and status < 500:
            return
        time.sleep(0.5)
    with figures.lock:
        figures.gave_up += 1


def stream(stack: Stack, tag: str, fault: Callable[[], None]) -> Figures:
    figures = Figures()
    total = RATE * SECONDS
    start = time.monotonic()
    numbers = iter(range(total))
    numbers_lock = threading.Lock()

    def sender() -> None:
        while True:
            with numbers_lock:
                n = next(numbers, None)
            if n is None:
                return
            time.sleep(max(0.0, start + n / RATE - time.monotonic()))
            deliver(stack, figures, tag, n)

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    time.sleep(FAULT_AFTER)
    fault()
    for thread in threads:
        thread.join()
    return figures


def wait_for_correlation(stack: Stack) -> tuple[int, float]:
    """(alerts still uncorrelated at the bound, seconds until none was left)."""
    start = time.monotonic()
    while True:
        [(stuck,)] = stack.query("SELECT count(*) FROM alerts_alert WHERE correlated_at IS NULL")
        waited = time.monotonic() - start
        if stuck == 0 or waited > CORRELATION_BOUND:
            return stuck, waited
        time.sleep(0.5)


def check(stack: Stack, name: str, tag: str, figures: Figures, capsys) -> None:
    stuck, correlated_in = wait_for_correlation(stack)
    stored = dict(
        stack.query(
            "SELECT message, count(*) FROM alerts_alert WHERE message LIKE %s GROUP BY message",
            f"{tag} #%",
        )
    )
    ids = [i for alert_ids in figures.alert_ids.values() for i in alert_ids]
    [(found,)] = stack.query("SELECT count(*) FROM alerts_alert WHERE id = ANY(%s)", ids)
    lost = len(ids) - found
    with capsys.disabled():
        print(figures.line(name, lost, stuck, correlated_in))
    assert figures.server_errors == 0, "a 5xx other than 503"
    assert not figures.others, f"unexpected answers {dict(figures.others)}"
    assert figures.gave_up == 0, "deliveries never accepted"
    assert figures.duplicates == 0, "a delivery refused with 503 had been stored"
    assert lost == 0
    assert len(figures.alert_ids) == RATE * SECONDS
    assert sum(stored.values()) == len(stored) == len(figures.alert_ids), "stored once each"
    assert stuck == 0, f"{stuck} alerts not correlated within {CORRELATION_BOUND} s"


def assert_worker_kept(stack: Stack, pid: int, log_from: int) -> None:
    """The worker process ``pid`` is still the one running, and its log from ``log_from``
    on does not show an exit."""
    output = stack.worker.output()[log_from:]
    exited = output.find("exited with status")
    assert exited == -1, f"the worker exited:\n{output[max(0, exited - 6000) : exited + 200]}"
    child = stack.worker.child()
    assert child is not None and child.pid == pid


def test_redis_restart_mid_stream(stack, capsys):
    worker, log_from = stack.worker.child().pid, len(stack.worker.output())
    # A request accepted before the restart, captured to be replayed after it.
    tenant = stack.tenants[0]
    body = json.dumps(
        {
            "asset_name": "srv-x",
            "signature": "x",
            "severity": "low",
            "message": "captured",
            "tool_source": "Zabbix",
        }
    ).encode()
    # The first signed request starts the replay memory, and a request stamped in an earlier
    # second than that start is refused: send until one passes.
    for _ in range(10):
        captured = signed_request(stack, tenant, body, "")
        status, answer = post(captured)
        if status == 202:
            break
        assert answer["error"] == "signature_unproven"
        time.sleep(0.2)
    time.sleep(1.1)  # the capture is stamped a whole second before the restart

    def restart_redis() -> None:
        stack.redis.stop()
        time.sleep(10)
        stack.redis.start()

    figures = stream(stack, "redis", restart_redis)
    check(stack, "redis restart", "redis", figures, capsys)
    assert figures.unavailable > 0, "the outage was not seen"
    status, answer = post(captured)
    assert (status, answer.get("error")) == (401, "signature_unproven")
    assert stack.query("SELECT count(*) FROM alerts_alert WHERE message = 'captured'") == [(1,)]
    assert_worker_kept(stack, worker, log_from)
    assert "exited with status" not in stack.beat.output()


def test_worker_killed_mid_stream(stack, capsys):
    killed = stack.worker.child().pid

    def kill_worker() -> None:
        stack.worker.child().send_signal(signal.SIGKILL)

    figures = stream(stack, "kill", kill_worker)
    check(stack, "worker SIGKILL", "kill", figures, capsys)
    child = stack.worker.child()
    assert child is not None and child.pid != killed
    assert "exited with status -9" in stack.worker.output()


def test_postgres_restart_mid_stream(stack, capsys):
    worker, log_from = stack.worker.child().pid, len(stack.worker.output())

    def restart_postgres() -> None:
        stack.postgres.stop()
        time.sleep(5)
        stack.postgres.start()

    figures = stream(stack, "postgres", restart_postgres)
    check(stack, "postgres restart", "postgres", figures, capsys)
    assert figures.unavailable > 0, "the outage was not seen"
    assert_worker_kept(stack, worker, log_from)


def test_a_webhook_held_by_the_database_answers_503_at_the_statement_timeout(stack):
    """A webhook whose query cannot finish (here: the alerts table locked by another
    session, as a long migration or a stuck maintenance job would) answers 503 with
    ``Retry-After`` once the statement timeout stops it, instead of holding the tool's
    connection until the tool gives up, and stores nothing; sent again once the table is
    free, the same delivery is stored once. A webhook server of its own, with a 1 s
    timeout (the web servers' default is 30 s)."""
    port = free_port()
    server = Supervised(
        "webhooks-timeout",
        [
            *(str(VENV_BIN / "granian"), "--interface=wsgi", "--host=127.0.0.1"),
            *(f"--port={port}", "--workers=1", "--blocking-threads=2", "--no-ws"),
            *("--log-level=warning", "alertwhisperer.webhooks_wsgi:application"),
        ],
        {**stack.env, "WEB_STATEMENT_TIMEOUT": "1s"},
        stack.directory,
    )
    tenant = stack.tenants[1]
    body = json.dumps(
        {
            "asset_name": "srv-locked",
            "signature": "disk_full",
            "severity": "high",
            "message": "held by a lock",
            "tool_source": "Zabbix",
        }
    ).encode()

    def send() -> tuple[int, dict, str | None]:
        request = signed_request(stack, tenant, body, "held-by-a-lock")
        request.full_url = f"http://127.0.0.1:{port}/api/webhooks/alerts"
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read()), None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), error.headers.get("Retry-After")

    try:
        wait_until(lambda: accepts_connections(port), 30, "webhook server start")
        with psycopg.connect(stack.postgres.url) as holder:
            holder.execute("LOCK TABLE alerts_alert IN ACCESS EXCLUSIVE MODE")
            status, answer, retry_after = send()
        assert status == 503, answer
        assert "ran past the 1s time limit" in answer["message"]
        assert retry_after == "5"
        assert "A query was cancelled, answering 503" in server.output()
        assert stack.query(
            "SELECT count(*) FROM alerts_alert WHERE message = 'held by a lock'"
        ) == [(0,)]

        status, answer, _ = send()
        assert status == 202 and not answer["duplicate"], answer
        assert stack.query(
            "SELECT count(*) FROM alerts_alert WHERE message = 'held by a lock'"
        ) == [(1,)]
    finally:
        server.stop()
