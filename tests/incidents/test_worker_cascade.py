"""End to end through a real worker: a cascade posted over HTTP, symptoms first and the
root last, becomes one incident rooted upstream, assigned once."""

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from apps.alerts.models import Alert
from apps.audit.models import AuditLog
from apps.incidents.dependencies import dependencies_replace
from apps.incidents.models import Incident
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def post(url: str, key: str, n: int, asset: str, signature: str, severity: str, at: datetime):
    body = {
        "asset_name": asset,
        "signature": signature,
        "severity": severity,
        "message": f"{signature} on {asset}",
        "tool_source": "Prometheus",
        "timestamp": at.isoformat(),
    }
    request = urllib.request.Request(
        f"{url}/api/webhooks/alerts?api_key={key}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Delivery-ID": f"cascade-{n}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def test_a_cascade_posted_over_http_is_one_incident_through_the_worker(
    live_server, celery_worker_process
):
    worker = celery_worker_process()
    company, key = company_create(company=Company(name="Acme", slug="acme"))
    technician = UserFactory(role="Technician", companies=[company])
    dependencies_replace(
        company=company, graph={"app-01": ["db-01"], "app-02": ["db-01"]}, actor=None
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    post(
        live_server.url,
        key,
        1,
        "app-01",
        "db_connection_error",
        "high",
        start + timedelta(seconds=60),
    )
    post(
        live_server.url,
        key,
        2,
        "app-02",
        "db_connection_error",
        "high",
        start + timedelta(seconds=80),
    )
    time.sleep(1.5)  # the symptoms are correlated first, apart
    post(live_server.url, key, 3, "db-01", "mysql_down", "critical", start)

    deadline = time.monotonic() + 30
    while Alert.objects.filter(correlated_at__isnull=True).exists():
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not correlate within 30 s"
        time.sleep(0.2)
    incident = Incident.objects.get(merged_into__isnull=True)
    assert (incident.asset_name, incident.signature, incident.alert_count) == (
        "db-01",
        "mysql_down",
        3,
    )
    deadline = time.monotonic() + 10
    while incident.assigned_to_id is None and time.monotonic() < deadline:
        time.sleep(0.2)
        incident.refresh_from_db()
    assert incident.assigned_to == technician
    assert (
        AuditLog.objects.filter(action="incident_assigned", target_id=str(incident.pk)).count() == 1
    )
