"""PagerDuty Events API v2 at /api/webhooks/alerts/pagerduty: PagerDuty's documented
payloads in, PagerDuty's answers out."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from apps.alerts.models import Alert
from apps.incidents.models import Incident
from apps.tenants.models import Company

PAGERDUTY = "/api/webhooks/alerts/pagerduty"
NOW = datetime.now(UTC).replace(microsecond=0)


def trigger(key: str, **changes) -> dict:
    """PagerDuty's documented trigger example, with the company's key as routing key."""
    event = {
        "payload": {
            "summary": "Example alert on host1.example.com",
            "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
            "source": "host1.example.com",
            "severity": "error",
            "component": "postgres",
            "group": "prod-datapipe",
            "class": "deploy",
            "custom_details": {"ping time": "1500ms", "load avg": 0.75, "nested": {"a": 1}},
        },
        "routing_key": key,
        "dedup_key": "samplekeyhere",
        "links": [{"href": "https://example.com/", "text": "Link text"}],
        "event_action": "trigger",
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.example.com",
    }
    event.update(changes)
    return event


def send(client, event: dict, *, path: str = PAGERDUTY, **headers):
    return client.post(path, json.dumps(event), content_type="application/json", headers=headers)


def test_trigger_is_stored_and_answered_as_pagerduty_does(client, tenant):
    response = send(client, trigger(tenant.key))
    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "samplekeyhere",
    }
    alert = Alert.objects.get(company=tenant.company)
    assert (alert.asset_name, alert.signature, alert.severity, alert.status) == (
        "host1.example.com",
        "deploy",
        "high",
        "firing",
    )
    assert alert.message == "Example alert on host1.example.com"
    assert alert.tool_source == "Sample Monitoring Service"
    assert alert.source == "pagerduty"
    assert alert.fingerprint == "samplekeyhere"
    assert alert.event_time == NOW - timedelta(minutes=1)
    assert alert.labels == {
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "ping time": "1500ms",
        "load avg": "0.75",
    }
    assert response["X-RateLimit-Remaining"]


def test_trigger_without_dedup_key_gets_one(client, tenant):
    event = trigger(tenant.key)
    del event["dedup_key"]
    key = send(client, event).json()["dedup_key"]
    assert len(key) == 32
    assert Alert.objects.get().fingerprint == key


@pytest.mark.parametrize("severity", ["critical", "error", "warning", "info"])
def test_severities(client, tenant, severity):
    event = trigger(tenant.key)
    event["payload"]["severity"] = severity
    assert send(client, event).status_code == 202
    expected = {"critical": "critical", "error": "high", "warning": "medium", "info": "low"}
    assert Alert.objects.get().severity == expected[severity]


def test_dedup_key_reuse_updates_the_open_alert(client, tenant):
    send(client, trigger(tenant.key))
    event = trigger(tenant.key)
    event["payload"]["summary"] = "Still failing"
    send(client, event)
    alert = Alert.objects.get()
    assert (alert.repeat_count, alert.message) == (1, "Still failing")


def test_trigger_acknowledge_resolve_then_a_new_alert(
    client, tenant, django_capture_on_commit_callbacks
):
    def step(event):
        with django_capture_on_commit_callbacks(execute=True):
            response = send(client, event)
        assert response.status_code == 202, response.content
        assert response.json()["dedup_key"] == "samplekeyhere"

    step(trigger(tenant.key))
    incident = Incident.objects.get(company=tenant.company)
    step({"routing_key": tenant.key, "dedup_key": "samplekeyhere", "event_action": "acknowledge"})
    assert Alert.objects.count() == 1
    step({"routing_key": tenant.key, "dedup_key": "samplekeyhere", "event_action": "resolve"})
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolution == "source"
    # A trigger with the same key after the resolve is a new alert, as in PagerDuty; within
    # the correlation window it brings the incident back, as flapping (docs/decisions.md).
    step(trigger(tenant.key))
    assert Alert.objects.filter(status="firing").count() == 2
    incident.refresh_from_db()
    assert incident.status == "new" and incident.flap_count == 1
    assert Incident.objects.filter(company=tenant.company).count() == 1


def test_resolve_with_a_payload_keeps_its_asset(client, tenant):
    event = trigger(tenant.key, event_action="resolve")
    send(client, event)
    assert Alert.objects.get().asset_name == "host1.example.com"


def test_key_in_the_url_or_header_instead_of_the_body(client, tenant):
    event = trigger("")
    assert send(client, event, path=f"{PAGERDUTY}?api_key={tenant.key}").status_code == 202
    assert send(client, event, **{"X-API-Key": tenant.key}).status_code == 202
    assert send(client, event, path=f"{PAGERDUTY}/").status_code == 400


def test_bad_routing_key_is_an_invalid_event(client, tenant):
    response = send(client, trigger("R0123456789ABCDEF0123456789ABCDE"))
    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["Unknown or revoked API key."],
    }
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event_action": "page"}, "event_action"),
        ({"payload": None}, "'payload' is missing"),
        ({"dedup_key": "k" * 256}, "dedup_key"),
        ({"event_action": "resolve", "dedup_key": ""}, "'dedup_key' is missing"),
        ({"event_action": "acknowledge", "dedup_key": ""}, "'dedup_key' is missing"),
    ],
)
def test_invalid_events(client, tenant, change, error):
    response = send(client, trigger(tenant.key, **change))
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(error in message for message in body["errors"]), body
    assert not Alert.objects.exists()


@pytest.mark.parametrize("field", ["summary", "source", "severity"])
def test_payload_fields_are_required(client, tenant, field):
    event = trigger(tenant.key)
    del event["payload"][field]
    body = send(client, event).json()
    assert body["errors"] == [f"payload.{field}: This field is required."]


def test_malformed_json_is_an_invalid_event(client, tenant):
    response = client.post(
        f"{PAGERDUTY}?api_key={tenant.key}", b"{", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["status"] == "invalid event"


def test_throttled_events_are_answered_as_pagerduty_throttles(client, tenant):
    Company.objects.filter(pk=tenant.company.pk).update(rate_limit_burst=1, rate_limit_per_minute=1)
    send(client, trigger(tenant.key))
    response = send(client, trigger(tenant.key))
    assert response.status_code == 429
    assert response.json()["status"] == "throttle event"
    assert int(response["Retry-After"]) >= 1


def test_companies_are_apart(client, tenant, other_tenant):
    send(client, trigger(tenant.key))
    send(client, trigger(other_tenant.key))
    assert Alert.objects.filter(company=tenant.company).count() == 1
    assert Alert.objects.filter(company=other_tenant.company).count() == 1


def test_detected_on_the_generic_endpoint(tenant):
    response = tenant.post(trigger(tenant.key))
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "samplekeyhere"
    assert Alert.objects.get().source == "pagerduty"
