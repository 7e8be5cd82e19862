"""Replay memory across a Redis restart: a signature older than the memory cannot be
proven unused, so it is refused; the embedded mode (no Redis) keeps the same rule."""

import json
import time

import pytest
from django.core.cache import cache

from apps.alerts.models import Alert
from apps.alerts.signing import REPLAY_EPOCH_KEY
from apps.common.redis import get_redis
from tests.alerts.conftest import generic, sign

pytestmark = pytest.mark.django_db


def forget_everything() -> None:
    """What a Redis restart without persistence does to the webhook's shared state."""
    get_redis().flushdb()


def memory_started(seconds_ago: int) -> None:
    """As if Redis had been up (and remembering signatures) for that long."""
    get_redis().set(REPLAY_EPOCH_KEY, int(time.time()) - seconds_ago)


def assert_unproven(response) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"] == "signature_unproven"
    assert "Sign the request again" in body["message"]


def test_a_replay_captured_before_redis_restarted_is_refused(signed_tenant):
    memory_started(600)
    raw = json.dumps(generic()).encode()
    headers = sign(signed_tenant.secret, raw, int(time.time()) - 5)
    assert signed_tenant.post(raw, **{**headers, "X-Delivery-ID": "d-1"}).status_code == 202
    forget_everything()
    assert_unproven(signed_tenant.post(raw, **headers))
    assert_unproven(signed_tenant.post(raw, **{**headers, "X-Delivery-ID": "d-2"}))
    assert Alert.objects.count() == 1


def test_requests_signed_after_the_restart_pass(signed_tenant):
    forget_everything()
    for message in ("one", "two"):
        raw = json.dumps(generic(message=message)).encode()
        assert signed_tenant.post(raw, **sign(signed_tenant.secret, raw)).status_code == 202
    assert Alert.objects.count() == 2


def test_the_memory_start_is_kept_and_taken_from_the_redis_clock(signed_tenant):
    forget_everything()
    raw = json.dumps(generic()).encode()
    signed_tenant.post(raw, **sign(signed_tenant.secret, raw))
    started = int(get_redis().get(REPLAY_EPOCH_KEY))
    assert abs(started - get_redis().time()[0]) <= 1
    assert get_redis().ttl(REPLAY_EPOCH_KEY) == -1
    raw = json.dumps(generic(message="later")).encode()
    signed_tenant.post(raw, **sign(signed_tenant.secret, raw))
    assert int(get_redis().get(REPLAY_EPOCH_KEY)) == started


def test_an_old_timestamp_passes_while_the_memory_is_older(signed_tenant):
    memory_started(600)
    raw = json.dumps(generic()).encode()
    headers = sign(signed_tenant.secret, raw, int(time.time()) - 290)
    assert signed_tenant.post(raw, **headers).status_code == 202
    assert signed_tenant.post(raw, **headers).json()["error"] == "signature_replayed"


def test_unsigned_companies_are_not_concerned(tenant):
    forget_everything()
    assert tenant.post(generic()).status_code == 202
    assert get_redis().get(REPLAY_EPOCH_KEY) is None


def test_embedded_mode_keeps_the_rule(signed_tenant, settings):
    """Without Redis the memory is this process's cache: a restart empties it."""
    settings.REDIS_URL = ""
    cache.set(REPLAY_EPOCH_KEY, int(time.time()) - 600, None)
    raw = json.dumps(generic()).encode()
    headers = sign(signed_tenant.secret, raw, int(time.time()) - 5)
    assert signed_tenant.post(raw, **headers).status_code == 202
    assert signed_tenant.post(raw, **headers).json()["error"] == "signature_replayed"
    cache.clear()
    assert_unproven(signed_tenant.post(raw, **headers))
    fresh = json.dumps(generic(message="fresh")).encode()
    assert signed_tenant.post(fresh, **sign(signed_tenant.secret, fresh)).status_code == 202
    assert Alert.objects.count() == 2
