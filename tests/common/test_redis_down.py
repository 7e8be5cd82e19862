"""With Redis unreachable (log-in throttle, rate limits, cache, broker), pages that need it
answer 503 with Retry-After and a message naming the service, like the API; the rest keep
working."""

import socket

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from apps.common.redis import get_redis
from tests.factories import PASSWORD


@pytest.fixture
def redis_down():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}
    get_redis.cache_clear()
    with override_settings(CACHES={"default": cache}, REDIS_URL=dead):
        yield
    get_redis.cache_clear()


def test_logging_in_while_redis_is_down_is_a_clear_503(client, technician_a, redis_down):
    response = client.post(
        reverse("accounts:login"), {"username": technician_a.email, "password": PASSWORD}
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Redis is unavailable for a moment. Try again in 5 s." in response.content.decode()


def test_the_token_exchange_while_redis_is_down_is_a_clear_json_503(technician_a, redis_down):
    response = APIClient().post(
        reverse("api:token"), {"username": technician_a.email, "password": PASSWORD}
    )
    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable"
    assert response.json()["message"].startswith("Redis is unavailable")


def test_pages_that_need_no_redis_keep_working(client, technician_a, request):
    client.force_login(technician_a)  # logging in records the success in Redis
    request.getfixturevalue("redis_down")
    assert client.get(reverse("incidents:list")).status_code == 200
