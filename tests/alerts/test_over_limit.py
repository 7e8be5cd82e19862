"""Over the rate limit, Alertmanager (which retries 5xx but drops 429) gets 503 with
Retry-After; every other sender keeps 429."""

import json
from pathlib import Path

import pytest

from apps.tenants.models import Company
from tests.alerts.conftest import WEBHOOK, generic

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GROUP = json.loads((FIXTURES / "alertmanager/alertmanager_watchdog_firing.json").read_text())


@pytest.fixture
def limited(tenant):
    Company.objects.filter(pk=tenant.company.pk).update(rate_limit_burst=1, rate_limit_per_minute=1)
    return tenant


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"{WEBHOOK}/alertmanager", {}),
        (f"{WEBHOOK}/prometheus", {}),
        (WEBHOOK, {"User-Agent": "Alertmanager/0.25.0"}),
    ],
)
def test_alertmanager_gets_503_with_retry_after(limited, path, headers):
    assert limited.post(GROUP, path=path, **headers).status_code == 202
    response = limited.post(GROUP, path=path, **headers)
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "rate_limited"
    assert "Alertmanager retries 5xx but drops 429" in body["message"]
    assert int(response["Retry-After"]) >= 1
    assert response["X-RateLimit-Remaining"] == "0"


@pytest.mark.parametrize(
    ("path", "body"),
    [(WEBHOOK, generic()), (f"{WEBHOOK}/grafana", GROUP), (WEBHOOK, GROUP)],
)
def test_other_senders_keep_429(limited, path, body):
    limited.post(body, path=path)
    response = limited.post(body, path=path)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"


def test_a_refused_body_says_what_is_left_of_the_limit(tenant):
    response = tenant.post({"unknown": "shape"})
    assert response.status_code == 400
    assert response["X-RateLimit-Limit"] and response["X-RateLimit-Remaining"]
    assert tenant.post(b"not json").status_code == 400
