"""The webhook endpoint over HTTP: keys, signatures, rate limits, idempotency, bad input."""

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.alerts.models import Alert, Delivery
from apps.alerts.signing import REPLAY_EPOCH_KEY
from apps.common.redis import get_redis
from apps.incidents.models import Incident
from apps.tenants.models import Asset, Company
from apps.tenants.services import (
    api_key_regenerate,
    company_update,
    hmac_disable,
    hmac_enable,
)
from tests.alerts.conftest import WEBHOOK, generic, sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str, *fragments: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code
    for fragment in fragments:
        assert fragment in body["message"]
    return body


def test_generic_alert_is_stored_and_correlated(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.post(generic(), **{"X-Delivery-ID": "dd-1"})
    assert response.status_code == 202
    body = response.json()
    assert body == {
        "accepted": 1,
        "alert_ids": body["alert_ids"],
        "duplicate": False,
        "repeats": 0,
        "delivery_id": "dd-1",
    }
    alert = Alert.objects.get(pk=body["alert_ids"][0])
    assert (alert.company, alert.asset_name, alert.signature) == (
        tenant.company,
        "srv-db-01",
        "disk_full",
    )
    assert alert.severity == "critical" and alert.status == "firing"
    assert alert.delivery_id == "dd-1" and alert.source == "generic"
    assert alert.received_at is not None and alert.correlated_at is not None
    assert alert.incident.title == "disk_full on srv-db-01"
    assert response["X-RateLimit-Limit"] == "60"
    assert response["X-RateLimit-Burst"] == "100"
    assert response["X-RateLimit-Remaining"] == "99"


def test_api_key_in_query_string_and_trailing_slash(tenant):
    raw = json.dumps(generic()).encode()
    for path in (f"{WEBHOOK}?api_key={tenant.key}", f"{WEBHOOK}/?api_key={tenant.key}"):
        response = tenant.client.post(path, raw, content_type="application/json")
        assert response.status_code == 202


def test_alertmanager_group_is_many_alerts(tenant):
    body = (FIXTURES / "alertmanager" / "alertmanager_group_firing_2_alerts.json").read_bytes()
    response = tenant.post(body, path=f"{WEBHOOK}/alertmanager")
    assert response.json()["accepted"] == 2
    assert set(Alert.objects.values_list("source", "tool_source").distinct()) == {
        ("alertmanager", "Alertmanager")
    }


def test_company_changes_reach_a_cached_key_at_once(tenant):
    """The web process keeps key lookups in memory; a change made anywhere (here the
    services, in another process the same Redis generation) is seen by the next request."""
    assert tenant.post(generic()).status_code == 202  # the lookup is now cached
    secret = hmac_enable(company=tenant.company)
    assert_error(tenant.post(generic()), 401, "signature_missing")
    raw = json.dumps(generic()).encode()
    assert tenant.post(raw, **sign(secret, raw)).status_code == 202  # cached with HMAC on
    hmac_disable(company=tenant.company)
    assert tenant.post(generic()).status_code == 202
    tenant.company.is_active = False
    company_update(company=tenant.company, changed=["is_active"])
    assert_error(tenant.post(generic()), 401, "api_key_invalid")


def test_a_deleted_company_is_refused_not_a_server_error(tenant):
    assert tenant.post(generic()).status_code == 202
    Company.objects.filter(pk=tenant.company.pk).delete()
    assert_error(tenant.post(generic()), 401, "api_key_invalid")


def test_the_webhook_server_takes_webhooks_through_its_lean_stack(tenant, settings):
    """alertwhisperer/webhooks_wsgi.py runs these settings: the webhook works, nothing
    else is served, and ALLOWED_HOSTS still holds."""
    settings.MIDDLEWARE = settings.WEBHOOK_SERVER_MIDDLEWARE
    settings.ROOT_URLCONF = settings.WEBHOOK_SERVER_URLCONF
    assert tenant.post(generic()).status_code == 202
    assert tenant.post(generic(), path=f"{WEBHOOK}/generic").status_code == 202
    for path in ("/", "/admin/"):
        response = tenant.client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    raw = json.dumps(generic()).encode()
    response = tenant.client.post(
        WEBHOOK,
        raw,
        content_type="application/json",
        headers={"X-API-Key": tenant.key, "Host": "evil.example"},
    )
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert Alert.objects.count() == 2


def test_any_accept_header_gets_a_json_answer(tenant):
    response = tenant.post(generic(), Accept="text/html")
    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"


def test_missing_and_unknown_keys_are_refused(tenant):
    raw = json.dumps(generic()).encode()
    response = tenant.client.post(WEBHOOK, raw, content_type="application/json")
    assert_error(response, 401, "api_key_missing", "X-API-Key")
    response = tenant.client.post(
        WEBHOOK, raw, content_type="application/json", headers={"X-API-Key": "aw_nope_x"}
    )
    assert_error(response, 401, "api_key_invalid")
    assert not Alert.objects.exists()


def test_regenerated_key_stops_at_once(tenant):
    assert tenant.post(generic()).status_code == 202
    new_key = api_key_regenerate(company=tenant.company)
    assert_error(tenant.post(generic()), 401, "api_key_invalid")
    tenant.key = new_key
    assert tenant.post(generic()).status_code == 202


# --- HMAC -------------------------------------------------------------------------------------
def test_signed_request_passes(signed_tenant):
    raw = json.dumps(generic()).encode()
    response = signed_tenant.post(raw, **sign(signed_tenant.secret, raw))
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("headers", "code", "fragment"),
    [
        ({}, "signature_missing", "missing X-Signature and X-Timestamp"),
        ({"X-Timestamp": "1"}, "signature_missing", "missing X-Signature"),
        ({"X-Timestamp": "soon", "X-Signature": "sha256=00"}, "signature_invalid", "Unix time"),
        ({"X-Signature": "md5=abc"}, "signature_invalid", "sha256="),
        ({"X-Signature": "sha256=" + "0" * 64}, "signature_invalid", "does not match"),
    ],
)
def test_unsigned_or_badly_signed_requests_are_refused(signed_tenant, headers, code, fragment):
    raw = json.dumps(generic()).encode()
    base = {"X-Timestamp": str(int(time.time()))}
    response = signed_tenant.post(raw, **{**base, **headers} if headers else {})
    assert_error(response, 401, code, fragment)
    assert not Alert.objects.exists()


def test_signature_of_another_body_is_refused(signed_tenant):
    raw = json.dumps(generic()).encode()
    tampered = json.dumps(generic(severity="low")).encode()
    response = signed_tenant.post(tampered, **sign(signed_tenant.secret, raw))
    assert_error(response, 401, "signature_invalid")


def test_signature_with_another_secret_is_refused(signed_tenant):
    raw = json.dumps(generic()).encode()
    assert_error(signed_tenant.post(raw, **sign("not-the-secret", raw)), 401, "signature_invalid")


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_or_future_timestamps_are_refused(signed_tenant, skew):
    raw = json.dumps(generic()).encode()
    headers = sign(signed_tenant.secret, raw, int(time.time()) + skew)
    assert_error(signed_tenant.post(raw, **headers), 401, "signature_expired", "300 s")


def test_timestamp_within_tolerance_passes(signed_tenant):
    # The replay memory has been running for longer than the tolerance (a fresh one cannot
    # vouch for older signatures: tests/alerts/test_admission.py).
    get_redis().set(REPLAY_EPOCH_KEY, int(time.time()) - 600)
    raw = json.dumps(generic()).encode()
    headers = sign(signed_tenant.secret, raw, int(time.time()) - 290)
    assert signed_tenant.post(raw, **headers).status_code == 202


def test_replayed_request_is_refused(signed_tenant):
    raw = json.dumps(generic()).encode()
    headers = sign(signed_tenant.secret, raw)
    assert signed_tenant.post(raw, **headers).status_code == 202
    assert_error(signed_tenant.post(raw, **headers), 401, "signature_replayed")
    assert Alert.objects.count() == 1


def test_exact_retry_of_a_delivery_returns_its_alerts_instead_of_a_replay_error(signed_tenant):
    raw = json.dumps(generic()).encode()
    headers = {**sign(signed_tenant.secret, raw), "X-Delivery-ID": "retry-1"}
    first = signed_tenant.post(raw, **headers)
    again = signed_tenant.post(raw, **headers)
    assert again.status_code == 202
    assert again.json() == {**first.json(), "duplicate": True}
    other_id = signed_tenant.post(raw, **{**headers, "X-Delivery-ID": "retry-2"})
    assert_error(other_id, 401, "signature_replayed")
    assert Alert.objects.count() == 1


def test_a_request_refused_for_its_rate_can_be_sent_again_as_it_was(signed_tenant):
    """The signature is remembered only once the request got a token: a tool that retries
    a 429 unchanged is not told it replays."""
    signed_tenant.company.rate_limit_burst = 1
    signed_tenant.company.rate_limit_per_minute = 1000  # one token every 60 ms
    company_update(
        company=signed_tenant.company, changed=["rate_limit_burst", "rate_limit_per_minute"]
    )
    first = json.dumps(generic(message="one")).encode()
    assert signed_tenant.post(first, **sign(signed_tenant.secret, first)).status_code == 202
    raw = json.dumps(generic(message="two")).encode()
    headers = sign(signed_tenant.secret, raw)
    assert_error(signed_tenant.post(raw, **headers), 429, "rate_limited")
    time.sleep(0.15)
    assert signed_tenant.post(raw, **headers).status_code == 202
    assert_error(signed_tenant.post(raw, **headers), 401, "signature_replayed")
    assert Alert.objects.count() == 2


def test_companies_without_hmac_accept_unsigned_requests(signed_tenant, other_tenant):
    assert_error(signed_tenant.post(generic()), 401, "signature_missing")
    assert other_tenant.company.hmac_enabled is False
    assert other_tenant.post(generic()).status_code == 202


# --- rate limiting ----------------------------------------------------------------------------
def test_token_bucket_per_company(tenant, other_tenant):
    tenant.company.rate_limit_burst = 3
    company_update(company=tenant.company, changed=["rate_limit_burst"])
    statuses = [tenant.post(generic()).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    limited = tenant.post(generic())
    body = assert_error(limited, 429, "rate_limited", "60 requests per minute", "burst 3")
    assert body["message"].endswith(f"Retry after {limited['Retry-After']} s.")
    assert 1 <= int(limited["Retry-After"]) <= 1
    assert limited["X-RateLimit-Limit"] == "60"
    assert limited["X-RateLimit-Burst"] == "3"
    assert limited["X-RateLimit-Remaining"] == "0"
    assert other_tenant.post(generic()).status_code == 202
    assert Alert.objects.filter(company=tenant.company).count() == 3
    if settings.REDIS_URL:
        assert get_redis().exists(f"aw:ratelimit:{tenant.company.pk}")


def test_tokens_refill_at_the_per_minute_rate(tenant):
    tenant.company.rate_limit_burst = 1
    tenant.company.rate_limit_per_minute = 1000  # one token every 60 ms
    company_update(company=tenant.company, changed=["rate_limit_burst", "rate_limit_per_minute"])
    assert tenant.post(generic()).status_code == 202
    assert tenant.post(generic()).status_code == 429
    time.sleep(0.15)
    assert tenant.post(generic()).status_code == 202


# --- idempotency ------------------------------------------------------------------------------
def test_repeated_delivery_id_returns_the_first_alerts(tenant):
    first = tenant.post(generic(), **{"X-Delivery-ID": "abc"})
    second = tenant.post(generic(message="changed"), **{"X-Delivery-ID": "abc"})
    assert second.status_code == 202
    assert second.json() == {**first.json(), "duplicate": True}
    assert Alert.objects.count() == 1
    assert Delivery.objects.get().alert_ids == first.json()["alert_ids"]


def test_delivery_ids_are_per_company(tenant, other_tenant):
    tenant.post(generic(), **{"X-Delivery-ID": "same"})
    response = other_tenant.post(generic(), **{"X-Delivery-ID": "same"})
    assert response.json()["duplicate"] is False
    assert Alert.objects.count() == 2


def test_delivery_id_older_than_a_day_is_new_again(tenant):
    from datetime import timedelta

    from django.utils import timezone

    tenant.post(generic(), **{"X-Delivery-ID": "old"})
    Delivery.objects.update(received_at=timezone.now() - timedelta(hours=25))
    response = tenant.post(generic(), **{"X-Delivery-ID": "old"})
    assert response.json()["duplicate"] is False
    assert Alert.objects.count() == 2


# --- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "fragment"),
    [
        (
            b"asset_name=x",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            "x-www-form-urlencoded",
        ),
        (b'{"asset_name": ', "application/json", 400, "malformed_json", "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "invalid_payload", "JSON object"),
        (b"", "application/json", 400, "malformed_json", "empty"),
        (
            json.dumps(generic(severity="urgent")).encode(),
            "application/json",
            400,
            "invalid_payload",
            "severity",
        ),
        (b"\xff\xfe{}", "application/json", 400, "invalid_encoding", "UTF-8"),
        (
            json.dumps({"hello": "world"}).encode(),
            "application/json",
            400,
            "unknown_source",
            "/api/webhooks/alerts/<source>",
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    tenant, body, content_type, status, code, fragment
):
    response = tenant.post(body, content_type=content_type)
    assert_error(response, status, code, fragment)
    assert not Alert.objects.exists()


def test_missing_fields_are_each_named(tenant):
    response = tenant.post({"severity": "low"}, path=f"{WEBHOOK}/generic")
    body = assert_error(response, 400, "invalid_payload")
    assert {"asset_name", "signature", "message", "tool_source"} <= set(body["fields"])


def test_unknown_source_in_the_path_is_404(tenant):
    response = tenant.post(generic(), path=f"{WEBHOOK}/nagios")
    assert_error(response, 404, "unknown_source", "nagios", "alertmanager")


def test_zabbix_macro_left_unexpanded_is_refused(tenant):
    envelope = json.loads((FIXTURES / "documented" / "zabbix_webhook_problem.json").read_text())
    body = {**envelope["body"], "host_host": "{HOST.HOST}"}
    response = tenant.post(body, path=f"{WEBHOOK}/zabbix")
    assert_error(response, 400, "unexpanded_macro", "{HOST.HOST}")
    assert not Alert.objects.exists()


def test_body_over_one_mebibyte_is_413(tenant):
    big = json.dumps(generic(message="x" * (1024 * 1024))).encode()
    response = tenant.post(big)
    assert_error(response, 413, "payload_too_large", "1 MiB")
    assert not Alert.objects.exists()


def test_overlong_delivery_id_is_refused(tenant):
    response = tenant.post(generic(), **{"X-Delivery-ID": "x" * 201})
    assert_error(response, 400, "invalid_delivery_id", "200")


def test_hot_path_query_count(tenant, django_assert_num_queries):
    """One INSERT stores a delivery (alerts and delivery record together). The test runs in
    a transaction, so it sits in a savepoint here: three queries; in production, one."""
    tenant.post(generic())  # warms the API key cache
    with django_assert_num_queries(3):
        assert tenant.post(generic(), **{"X-Delivery-ID": "q-1"}).status_code == 202
    with django_assert_num_queries(3):
        body = (FIXTURES / "alertmanager" / "alertmanager_group_firing_2_alerts.json").read_bytes()
        assert tenant.post(body).status_code == 202


def test_the_upsert_is_prepared_once_per_connection(tenant):
    """The webhook's statement is planned once per connection, not at each request: it is a
    prepared statement on the server (psycopg ignores ``prepare=True`` while the
    connection's threshold is None, Django's default), run again without parsing it."""

    def executions() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(generic_plans + custom_plans), 0) "
                "FROM pg_prepared_statements WHERE statement LIKE %s",
                ['%INSERT INTO "alerts_occurrence"%'],
            )
            return cursor.fetchone()[0]

    before = executions()
    for n in range(3):
        assert tenant.post(generic(message=f"run {n}")).status_code == 202
    assert executions() == before + 3


def test_values_reach_their_columns_unchanged(tenant):
    """The rows travel as one JSON parameter: text with quotes, backslashes and non-ASCII,
    JSON values and event times to the microsecond come back as they were sent."""
    event_time = timezone.now().replace(microsecond=123456) - timedelta(minutes=3)
    body = generic(
        asset_name='srv "db"\\01 — Zürich',
        message='line 1\nline 2\t{"not": "json"} ✓',
        timestamp=event_time.isoformat(),
        labels={"team": "ops ✓", "quote": '"'},
    )
    response = tenant.post(body, **{"X-Delivery-ID": "dé-1"})
    assert response.status_code == 202
    alert = Alert.objects.get()
    assert alert.asset_name == body["asset_name"]
    assert alert.message == body["message"]
    assert alert.event_time == event_time
    assert alert.labels == body["labels"]
    assert alert.raw == body
    assert alert.delivery_ids == ["dé-1"]
    assert alert.correlated_at is None and alert.received_at == alert.last_seen_at


def test_foreign_key_indexes_leave_out_alerts_without_incident_or_asset(tenant):
    """The webhook stores every alert without incident and asset: the two indexes on those
    columns leave such rows out, so that its insert maintains neither; deleting an asset
    still finds its alerts through its index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'alerts_alert' "
            "AND (indexdef LIKE '%%(asset_id%%' OR indexdef LIKE '%%(incident_id%%')"
        )
        definitions = dict(cursor.fetchall())
    assert sorted(definitions) == ["alert_asset", "alert_incident_time"]
    assert definitions["alert_asset"].endswith("WHERE (asset_id IS NOT NULL)")
    assert definitions["alert_incident_time"].endswith("WHERE (incident_id IS NOT NULL)")
    asset = Asset.objects.create(company=tenant.company, name="srv-db-01")
    tenant.post(generic())
    Alert.objects.update(asset=asset)
    asset.delete()
    assert Alert.objects.get().asset_id is None


def test_nothing_correlates_before_commit(tenant):
    tenant.post(generic())
    assert not Incident.objects.exists()
    assert Alert.objects.get().correlated_at is None
