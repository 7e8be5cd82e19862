"""The whole self-healing path with real processes: an alert posted over HTTP, correlated by
a real Celery worker, healed through STS AssumeRole and SSM SendCommand /
GetCommandInvocation on a moto server over HTTP, the incident resolved as self-healed."""

import json
import time
import urllib.request

import pytest

from apps.incidents.models import Incident
from apps.runbooks.models import RunbookExecution
from apps.tenants.models import Asset, Company
from apps.tenants.services import company_create
from tests.runbooks.factories import AwsLinkFactory, RunbookFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_alert_to_self_healed_incident(live_server, moto_endpoint, celery_worker_process):
    worker = celery_worker_process(
        AWS_ENDPOINT_URL=moto_endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"
    )
    company, key = company_create(company=Company(name="Acme", slug="acme"))
    AwsLinkFactory(company=company)
    Asset.objects.create(company=company, name="web-1", instance_id="mi-0123456789abcdef0")
    RunbookFactory(
        name="Restart nginx",
        signature_pattern="service_down:*",
        actions=["sudo systemctl restart nginx"],
    )
    body = json.dumps(
        {
            "asset_name": "web-1",
            "signature": "service_down:nginx",
            "severity": "high",
            "message": "nginx is not running",
            "tool_source": "Zabbix",
        }
    ).encode()
    request = urllib.request.Request(
        f"{live_server.url}/api/webhooks/alerts?api_key={key}",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202

    deadline = time.monotonic() + 45
    incident = None
    while time.monotonic() < deadline:
        incident = Incident.objects.filter(company=company).first()
        if incident and incident.status == "resolved":
            break
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.3)
    else:
        pytest.fail(f"not self-healed within 45 s: {incident and incident.status}")
    assert incident.resolution == "self_healed"
    execution = RunbookExecution.objects.get(incident=incident)
    assert execution.status == "success" and execution.automatic
    assert len(execution.command_id) == 36 and execution.instance_id == "mi-0123456789abcdef0"
    assert incident.assigned_to is None
