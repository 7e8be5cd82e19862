"""The webhook while Redis, the broker or the database is away: a delivery that was not
stored is a 503 with Retry-After (the tool tries again), never a 500; a delivery that was
stored is a 202 even when its correlation cannot be queued (the periodic sweep takes it)."""

import json
import logging
import socket

import kombu.exceptions
import pytest
import redis
from django.db import OperationalError

from apps.alerts import services, webhook
from apps.alerts.admission import _admit_script
from apps.alerts.models import Alert
from apps.common.redis import get_redis
from apps.incidents import tasks
from tests.alerts.conftest import generic

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    """Every raw Redis client of this process points at a port nobody listens on."""
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    get_redis.cache_clear()
    _admit_script.cache_clear()
    yield
    get_redis.cache_clear()
    _admit_script.cache_clear()


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"] == "service_unavailable"


def test_redis_down_is_503_with_retry_after_and_nothing_stored(tenant, redis_down):
    assert_unavailable(tenant.post(generic()))
    assert not Alert.objects.exists()


def test_database_down_is_503(tenant, monkeypatch):
    def unreachable(**kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed")

    monkeypatch.setattr(webhook, "alerts_ingest", unreachable)
    assert_unavailable(tenant.post(generic()))


@pytest.mark.parametrize("failure", ["redis", "broker", "anything"])
def test_a_stored_delivery_is_202_when_its_correlation_cannot_be_queued(
    tenant, monkeypatch, caplog, django_capture_on_commit_callbacks, failure
):
    def broker_away(*args, **kwargs):
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379")

    def broken(company_id):
        raise RuntimeError("a bug in scheduling")

    if failure == "redis":
        dead = redis.Redis(port=closed_port())
        monkeypatch.setattr(tasks, "get_redis", lambda: dead)
    elif failure == "broker":
        monkeypatch.setattr(tasks.correlate_pending, "apply_async", broker_away)
    else:
        monkeypatch.setattr(services, "schedule_correlation", broken)
    with (
        caplog.at_level(logging.WARNING),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = tenant.post(json.dumps(generic()).encode(), **{"X-Delivery-ID": "kept"})
    assert response.status_code == 202, response.content
    assert Alert.objects.filter(pk__in=response.json()["alert_ids"]).count() == 1
    logged = "a bug in scheduling" if failure == "anything" else "periodic sweep"
    assert logged in caplog.text
