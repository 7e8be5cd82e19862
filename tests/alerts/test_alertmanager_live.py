"""Real Alertmanager (Debian package prometheus-alertmanager) against the live server:
firing, repeats on a 5 s repeat_interval, a group change, a resolve, and a company over
its rate limit. Each test starts its own Alertmanager on a free 127.0.0.1 port with its own
configuration and data directory, and stops it."""

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone

from apps.alerts.models import Alert
from apps.heartbeats.models import HeartbeatState
from apps.heartbeats.services import heartbeat_create, heartbeats_check
from apps.incidents.models import Incident
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.processes import stop
from tests.system_tools import system_tool

pytestmark = pytest.mark.django_db(transaction=True)
CONFIG = """\
route:
  receiver: alert-whisperer
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 5s
receivers:
  - name: alert-whisperer
    webhook_configs:
      - url: "{url}"
        send_resolved: true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout} s waiting for {what}.")
        time.sleep(0.25)


class Alertmanager:
    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url = url
        self.process = process

    def stop(self) -> None:
        stop(self.process)

    def fire(self, *alerts: dict) -> None:
        response = requests.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=5)
        assert response.status_code == 200, response.text

    def metric(self, name: str) -> float:
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and 'integration="webhook"' in line
        )


@pytest.fixture
def acme(db) -> tuple[Company, str]:
    return company_create(
        company=Company(name="Acme", slug="acme", rate_limit_per_minute=1000, rate_limit_burst=1000)
    )


@pytest.fixture
def alertmanager(live_server, acme, tmp_path) -> Iterator[Alertmanager]:
    _, key = acme
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        CONFIG.format(url=f"{live_server.url}/api/webhooks/alerts/alertmanager?api_key={key}")
    )
    port = free_port()
    log = tmp_path / "alertmanager.log"
    binary = system_tool(
        "prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager"
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    alertmanager = Alertmanager(url, process)
    try:
        wait_until(lambda: _ready(url), timeout=20, what="Alertmanager to be ready")
        yield alertmanager
    finally:
        alertmanager.stop()


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def alert(name: str, instance: str, *, ends_in: timedelta = timedelta(hours=1)) -> dict:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": (now - timedelta(minutes=1)).replace(microsecond=0).isoformat(),
        "endsAt": (now + ends_in).isoformat(),
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
    }


def test_repeats_group_change_and_resolve_keep_one_row_per_alert(alertmanager, acme):
    company, _ = acme
    web1 = alert("HighLoad", "web-1")
    alertmanager.fire(web1)
    wait_until(
        lambda: Alert.objects.filter(company=company, repeat_count__gte=2).exists(),
        timeout=30,
        what="two re-sends of web-1 (repeat_interval 5 s)",
    )
    web2 = alert("HighLoad", "web-2")
    alertmanager.fire(web1, web2)
    wait_until(
        lambda: Alert.objects.filter(company=company, asset_name="web-2").exists(),
        timeout=15,
        what="the group change with web-2",
    )
    alertmanager.fire({**web1, "endsAt": datetime.now(UTC).isoformat()})
    wait_until(
        lambda: Alert.objects.filter(company=company, status="resolved").exists(),
        timeout=15,
        what="the resolve of web-1",
    )
    # More repeat_intervals pass: web-2 keeps being re-sent, nothing new is stored.
    time.sleep(12)

    rows = {
        (a.asset_name, a.status): a for a in Alert.objects.filter(company=company).order_by("id")
    }
    assert sorted(rows) == [("web-1", "firing"), ("web-1", "resolved"), ("web-2", "firing")]
    assert Alert.objects.filter(company=company).count() == 3
    assert rows["web-1", "firing"].repeat_count >= 2
    assert rows["web-1", "firing"].resolved_at is not None
    assert rows["web-2", "firing"].repeat_count >= 2
    assert len(rows["web-2", "firing"].delivery_ids) == rows["web-2", "firing"].repeat_count + 1
    incidents = Incident.objects.filter(company=company)
    assert sum(i.alert_count for i in incidents) == 2
    assert sum(i.open_alert_count for i in incidents) == 1
    assert alertmanager.metric("alertmanager_notifications_failed_total") == 0


def test_over_the_limit_alertmanager_retries_and_loses_nothing(alertmanager, acme):
    company, _ = acme
    Company.objects.filter(pk=company.pk).update(rate_limit_per_minute=60, rate_limit_burst=1)
    names = ["DiskFull", "HighLoad", "NodeDown", "QueueDeep"]
    # Four groups, notified together: one token, the others answered 503 and retried.
    alertmanager.fire(*(alert(name, "db-1") for name in names))
    wait_until(
        lambda: Alert.objects.filter(company=company).count() == len(names),
        timeout=40,
        what="every group stored despite the rate limit",
    )
    # 503s were answered and retried. On a loaded machine a retry can outlast the
    # notification's deadline (alertmanager_notifications_failed_total); Alertmanager then
    # sends the group again on its next flush, so what counts is that every alert arrived.
    assert alertmanager.metric("alertmanager_notification_requests_failed_total") >= 1
    assert sorted(Alert.objects.values_list("signature", flat=True)) == names


def test_a_stopped_watchdog_opens_an_incident_within_its_grace(
    alertmanager, acme, django_capture_on_commit_callbacks
):
    company, _ = acme
    heartbeat = heartbeat_create(
        company=company,
        name="Alertmanager",
        interval=timedelta(seconds=6),
        grace=timedelta(seconds=4),
        alert_name="Watchdog",
    )
    alertmanager.fire(alert("Watchdog", "", ends_in=timedelta(hours=1)))
    wait_until(
        lambda: Alert.objects.filter(signature="Watchdog", repeat_count__gte=1).exists(),
        timeout=20,
        what="a Watchdog re-send",
    )
    assert heartbeats_check(now=timezone.now()) == 0
    heartbeat.refresh_from_db()
    assert heartbeat.state == HeartbeatState.UP
    alertmanager.stop()
    stopped = timezone.now()
    time.sleep(11)  # the last re-send was before the stop: interval + grace have passed
    with django_capture_on_commit_callbacks(execute=True):
        assert heartbeats_check(now=timezone.now()) == 1
    incident = Incident.objects.get(company=company, title="Stopped reporting on Alertmanager")
    assert incident.status != "resolved"
    assert incident.first_alert_at - stopped < timedelta(seconds=12)
