"""One end-to-end run: a real HTTP request to a live server, the alert queued on the Redis
broker, correlated by a real Celery worker process against the PostgreSQL test database."""

import json
import time
import urllib.request

import pytest

from apps.alerts.models import Alert
from apps.incidents.models import Incident
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(celery_worker_process):
    return celery_worker_process()


def test_alert_posted_over_http_becomes_an_incident_through_the_worker(live_server, worker):
    company, key = company_create(company=Company(name="Acme", slug="acme"))
    technician = UserFactory(role="Technician", companies=[company])
    body = json.dumps(
        {
            "asset_name": "srv-db-01",
            "signature": "disk_full",
            "severity": "critical",
            "message": "Disk full",
            "tool_source": "Zabbix",
        }
    ).encode()
    request = urllib.request.Request(
        f"{live_server.url}/api/webhooks/alerts?api_key={key}",
        data=body,
        headers={"Content-Type": "application/json", "X-Delivery-ID": "e2e-1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        alert_id = json.loads(response.read())["alert_ids"][0]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alert = Alert.objects.get(pk=alert_id)
        if alert.correlated_at is not None:
            break
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.2)
    else:
        pytest.fail("the worker did not correlate the alert within 30 s")
    incident = Incident.objects.get(pk=alert.incident_id)
    assert incident.company == company
    assert incident.priority_score == 90
    deadline = time.monotonic() + 10
    while incident.assigned_to_id is None and time.monotonic() < deadline:
        time.sleep(0.2)
        incident.refresh_from_db()
    assert incident.assigned_to == technician
