"""/healthz, /readyz and /metrics on both servers."""

import json
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.urls import clear_url_caches
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.ops import selectors
from apps.ops.services import heartbeat_record
from tests.alerts.conftest import generic

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["main", "webhooks"])
def server(request, settings):
    """The main server, or the webhook server's URLconf and middleware."""
    if request.param == "webhooks":
        settings.ROOT_URLCONF = settings.WEBHOOK_SERVER_URLCONF
        settings.MIDDLEWARE = settings.WEBHOOK_SERVER_MIDDLEWARE
    clear_url_caches()
    yield request.param
    clear_url_caches()


def test_healthz_answers_without_dependencies(client, server, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_ready(client, server, worker_alive, company_a):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]) == {"database", "redis", "worker", "correlation"}
    assert body["checks"]["worker"]["heartbeat_age_seconds"] < 5
    assert body["checks"]["correlation"]["lag_seconds"] == 0
    assert "Acme" not in response.content.decode()


def test_readyz_redis_unreachable(client, server, worker_alive, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"] == {"ok": False, "error": "unreachable"}


def test_readyz_stale_heartbeat(client, server, settings):
    heartbeat_record(now=timezone.now() - timedelta(seconds=settings.OPS_HEARTBEAT_MAX_AGE + 5))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["worker"]


def test_readyz_without_any_heartbeat(client, server):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["heartbeat_age_seconds"] is None


def test_readyz_lagging_correlation(client, server, worker_alive, company_a, stored_alert):
    alert = stored_alert(company_a, 30)
    assert client.get("/readyz").status_code == 200
    alert.delete()
    stored_alert(company_a, 300)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["correlation"]
    assert 299 < body["checks"]["correlation"]["lag_seconds"] < 310
    assert "Acme" not in response.content.decode()


def test_readyz_database_unreachable(client, monkeypatch):
    class Down:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "connection", Down())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database", "worker", "correlation"]


def test_correlation_lag_is_one_query(company_a, stored_alert, django_assert_num_queries):
    stored_alert(company_a, 60)
    newer = stored_alert(company_a, 10)
    with django_assert_num_queries(1):
        lag = selectors.correlation_lag(now=newer.received_at + timedelta(seconds=10))
    assert 59 < lag < 61


def test_a_quarantined_alert_is_not_correlation_lag(company_a, stored_alert):
    """A quarantined alert waits for an admin, not for correlation: it must not keep
    /readyz failing nor the watchdog's lag incident open."""
    poison = stored_alert(company_a, 600)
    poison.quarantined_at = timezone.now()
    poison.quarantine_error = "OverflowError"
    poison.save(update_fields=["quarantined_at", "quarantine_error"])
    assert selectors.correlation_lag(now=timezone.now()) is None
    stored_alert(company_a, 30)
    assert 29 < selectors.correlation_lag(now=timezone.now()) < 35


# --- /metrics ----------------------------------------------------------------------------


def deliveries(source: str, status: str) -> float:
    labels = {"source": source, "status": status}
    return REGISTRY.get_sample_value("aw_webhook_deliveries_total", labels) or 0.0


def test_metrics_count_webhook_deliveries(client, server, tenant, worker_alive):
    before = {
        key: deliveries(*key)
        for key in [("auto", "202"), ("alertmanager", "400"), ("unknown", "404"), ("auto", "401")]
    }
    tenant.post(generic())
    tenant.post(generic(), path="/api/webhooks/alerts/")
    tenant.post({"nope": 1}, path="/api/webhooks/alerts/Prometheus")
    tenant.post(generic(), path="/api/webhooks/alerts/made-up")
    tenant.client.post("/api/webhooks/alerts", b"{}", content_type="application/json")

    assert deliveries("auto", "202") == before[("auto", "202")] + 2
    assert deliveries("alertmanager", "400") == before[("alertmanager", "400")] + 1
    assert deliveries("unknown", "404") == before[("unknown", "404")] + 1
    assert deliveries("auto", "401") == before[("auto", "401")] + 1

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert 'aw_webhook_deliveries_total{source="auto",status="202"}' in text
    assert "aw_correlation_lag_seconds" in text
    assert "aw_worker_heartbeat_age_seconds" in text
    assert "Acme" not in text


def test_metrics_from_loopback_only_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.8").status_code == 403
    forwarded = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status_code == 403


def test_metrics_with_a_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    remote = client.get(
        "/metrics", REMOTE_ADDR="10.0.0.8", headers={"Authorization": "Bearer s3cret-token"}
    )
    assert remote.status_code == 200


def test_probes_refuse_writes(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.post(path).status_code == 405


def test_readyz_body_is_json(client, worker_alive):
    assert json.loads(client.get("/readyz").content)["status"] == "ready"
