"""Input no tool should be able to hurt us with (issue 15): every webhook body is either
stored, sanitized where it must be, or refused with a 4xx that says what is wrong."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from apps.alerts.models import Alert
from tests.alerts.conftest import WEBHOOK, generic
from tests.alerts.test_sns_signature import alarm_envelope, seed_certificate, signed
from tests.alerts.test_sns_webhook import sns_post

pytestmark = pytest.mark.django_db


def group(*alerts: dict) -> dict:
    return {"version": "4", "status": "firing", "receiver": "aw", "alerts": list(alerts)}


def am_alert(name: str = "HighCPU", **changes) -> dict:
    alert = {
        "status": "firing",
        "labels": {"alertname": name, "instance": "web-01", "severity": "critical"},
        "annotations": {"summary": f"{name} on web-01"},
        "startsAt": datetime.now(UTC).isoformat(),
        "fingerprint": f"fp-{name}",
    }
    alert.update(changes)
    return alert


# --- event times ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00Z",
        -62135596801,
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "2000-01-01T00:00:00Z",
    ],
)
def test_an_event_time_out_of_bounds_is_stored_as_the_receipt_time_with_a_warning(
    tenant, timestamp
):
    response = tenant.post(generic(timestamp=timestamp))
    assert response.status_code == 202, response.content
    body = response.json()
    alert = Alert.objects.get()
    assert alert.event_time == alert.received_at
    assert alert.raw["timestamp"] == timestamp
    assert body["warnings"] == [{"index": 0, "warnings": alert.warnings}]
    assert "time of receipt was used" in alert.warnings[0]


def test_an_event_time_within_bounds_is_kept_without_warning(tenant):
    moment = datetime.now(UTC) - timedelta(days=29)
    response = tenant.post(generic(timestamp=moment.isoformat()))
    assert response.status_code == 202
    assert "warnings" not in response.json()
    alert = Alert.objects.get()
    assert alert.event_time == moment
    assert alert.warnings == []


def test_a_cloudwatch_alarm_of_year_one_is_clamped(tenant):
    seed_certificate()
    envelope = signed(alarm_envelope(StateChangeTime="0001-01-01T00:00:00.000+0000"))
    response = sns_post(tenant, envelope, path=f"{WEBHOOK}/cloudwatch")
    assert response.status_code == 202, response.content
    alert = Alert.objects.get()
    assert alert.event_time == alert.received_at
    assert response.json()["warnings"][0]["index"] == 0


# --- bodies that cannot be stored as they are ----------------------------------------------------
def _with_extra(raw_value: str) -> bytes:
    body = json.dumps(generic())
    return (body[:-1] + f', "extra": {raw_value}}}').encode()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_with_extra("1e400"), "too large to store"),
        (_with_extra("-1e400"), "too large to store"),
        (_with_extra("9" * 5000), "more than 4300 digits"),
        (_with_extra("[" * 2000 + "]" * 2000), "nested more than"),
        (_with_extra("[" * 70 + "]" * 70), "nested more than"),
    ],
)
def test_json_we_cannot_store_is_a_clear_400(tenant, body, fragment):
    response = tenant.post(body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "malformed_json"
    assert fragment in response.json()["message"]
    assert not Alert.objects.exists()


def test_a_deeply_nested_sns_message_is_a_clear_400(tenant):
    seed_certificate()
    message = '{"AlarmName": "x", "NewStateValue": "ALARM", "x": ' + "[" * 1000 + "]" * 1000 + "}"
    envelope = signed({**alarm_envelope(), "Message": message})
    response = sns_post(tenant, envelope, path=f"{WEBHOOK}/cloudwatch")
    assert response.status_code == 400, response.content
    assert "The SNS Message is nested more than" in response.json()["message"]


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800", "\\udfff", "a\\u0000\\ud83d"])
def test_nul_and_lone_surrogates_are_replaced_in_values_and_keys(tenant, bad):
    body = (
        '{"asset_name": "db' + bad + '", "signature": "disk", "severity": "low", '
        '"message": "m' + bad + '", "tool_source": "t", '
        '"labels": {"k' + bad + '": "v' + bad + '"}, "deep": [[{"x' + bad + '": "' + bad + '"}]]}'
    )
    response = tenant.post(body.encode())
    assert response.status_code == 202, response.content
    alert = Alert.objects.get()
    for text in (alert.asset_name, alert.message, *alert.labels, *alert.labels.values()):
        assert "\ufffd" in text
        assert "\x00" not in text
    unstorable = "\x00" + "".join(map(chr, range(0xD800, 0xE000)))
    clean = "".join("\ufffd" if c in unstorable else c for c in json.loads(f'"{bad}"'))
    assert alert.raw["deep"][0][0] == {"x" + clean: clean}


def test_a_valid_surrogate_pair_is_kept(tenant):
    body = json.dumps(generic(message="fire \U0001f525"), ensure_ascii=True).encode()
    assert tenant.post(body).status_code == 202
    assert Alert.objects.get().message == "fire \U0001f525"


# --- keys and delivery ids -----------------------------------------------------------------
@pytest.mark.parametrize("bad", ["\x00", "\ud800", "aw_\x00"])
def test_an_api_key_no_key_can_hold_is_refused_before_any_lookup(tenant, client, bad):
    response = client.post(
        WEBHOOK, json.dumps(generic()), content_type="application/json", headers={"X-API-Key": bad}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "api_key_invalid"
    response = client.post(
        f"{WEBHOOK}?api_key=%00", json.dumps(generic()), content_type="application/json"
    )
    assert response.status_code == 401


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "a\x01b"])
def test_a_delivery_id_no_column_can_hold_is_refused(tenant, bad):
    response = tenant.post(generic(), **{"X-Delivery-ID": bad})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_delivery_id"
    assert not Alert.objects.exists()


# --- batches --------------------------------------------------------------------------------------
def test_one_bad_alert_of_a_group_does_not_fail_the_others(tenant):
    body = group(
        am_alert("HighCPU"),
        am_alert("NoName", labels={"instance": "web-01"}),
        am_alert("DiskFull"),
        am_alert("BadTime", startsAt="yesterday"),
    )
    response = tenant.post(body, path=f"{WEBHOOK}/alertmanager")
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["accepted"] == 2
    assert sorted(Alert.objects.values_list("signature", flat=True)) == ["DiskFull", "HighCPU"]
    assert [item["index"] for item in answer["rejected"]] == [1, 3]
    assert "labels" in answer["rejected"][0]["errors"]
    assert "startsAt" in answer["rejected"][1]["errors"]


def test_a_grafana_group_keeps_its_valid_alerts(tenant):
    body = {**group(am_alert("A"), am_alert("B", status="exploded")), "version": "1", "orgId": 1}
    response = tenant.post(body, path=f"{WEBHOOK}/grafana")
    assert response.status_code == 202, response.content
    assert response.json()["rejected"][0]["index"] == 1
    assert Alert.objects.get().tool_source == "Grafana"


def test_a_group_without_a_valid_alert_is_a_400(tenant):
    body = group(am_alert("A", labels={}), am_alert("B", status="exploded"))
    response = tenant.post(body, path=f"{WEBHOOK}/alertmanager")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert {"alerts.0.labels", "alerts.1.status"} <= set(fields)
    assert not Alert.objects.exists()


def _disguised(depth: int) -> str:
    """Nesting whose brackets, strings included, pair up at once: ["]", ["]", …, "["], "["]."""
    return '["]", ' * depth + "1" + ', "["]' * depth


@pytest.mark.parametrize("depth", [70, 500, 900, 950, 980, 990])
def test_deep_nesting_disguised_by_brackets_in_strings_is_a_clear_400(tenant, depth):
    response = tenant.post(_with_extra(_disguised(depth)))
    assert response.status_code == 400, response.content
    assert "nested" in response.json()["message"]
