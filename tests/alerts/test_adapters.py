"""Webhook source adapters: real and documented payloads in, normalized alerts out.

SNS/CloudWatch deliveries need signed envelopes and are covered in test_sns_signature.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apps.alerts.adapters import ADAPTERS, AdapterError, AdapterOptions, ParseResult, parse
from apps.alerts.adapters.zabbix import ZabbixEventSerializer
from apps.common.errors import NotFound, UnsupportedMediaType

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SNS_FIXTURES = {
    "documented/aws_sns_cloudwatch_alarm_notification.json",
    "documented/aws_sns_cloudwatch_ok_notification.json",
    "documented/aws_sns_subscription_confirmation.json",
}
ZABBIX_MEDIA_TYPE_EXPORT = "documented/zabbix_mediatype_export.json"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


QUEUE_ORDERS_FIRING = (
    "web-1",
    "QueueDepthHigh",
    "medium",
    "firing",
    "b1c2c283e10773c6",
    utc("2026-11-22T23:54:46.79"),
)
QUEUE_PAYMENTS_FIRING = (
    "web-1",
    "QueueDepthHigh",
    "medium",
    "firing",
    "114d6d1a9b6ae4bc",
    utc("2026-11-22T23:54:46.79"),
)
QUEUE_PAYMENTS_RESOLVED = (
    "web-1",
    "QueueDepthHigh",
    "medium",
    "resolved",
    "114d6d1a9b6ae4bc",
    utc("2026-11-22T23:54:49.79"),
)
QUEUE_ORDERS_RESOLVED = (
    "web-1",
    "QueueDepthHigh",
    "medium",
    "resolved",
    "b1c2c283e10773c6",
    utc("2026-11-22T23:54:51.79"),
)
TARGET_DOWN_FIRING = (
    "127.0.0.1:19091",
    "TargetDown",
    "critical",
    "firing",
    "5d23c76709d5562d",
    utc("2026-11-22T23:54:53.79"),
)
TARGET_DOWN_RESOLVED = (
    "127.0.0.1:19091",
    "TargetDown",
    "critical",
    "resolved",
    "5d23c76709d5562d",
    utc("2026-11-22T23:54:56.79"),
)
WATCHDOG_FIRING = (
    "unknown",
    "Watchdog",
    "low",
    "firing",
    "863a7155daf2764c",
    utc("2026-11-22T23:54:38.79"),
)

# fixture file -> (explicit source, [(asset, signature, severity, status, fingerprint, time)])
EXPECTED: dict[str, tuple[str, list[tuple]]] = {
    "alertmanager/alertmanager_group_firing_1_firing_1_resolved.json": (
        "alertmanager",
        [QUEUE_ORDERS_FIRING, QUEUE_PAYMENTS_RESOLVED],
    ),
    "alertmanager/alertmanager_group_firing_2_alerts.json": (
        "alertmanager",
        [QUEUE_ORDERS_FIRING, QUEUE_PAYMENTS_FIRING],
    ),
    "alertmanager/alertmanager_group_resolved.json": ("alertmanager", [QUEUE_ORDERS_RESOLVED]),
    "alertmanager/alertmanager_targetdown_firing.json": ("alertmanager", [TARGET_DOWN_FIRING]),
    "alertmanager/alertmanager_targetdown_resolved.json": ("alertmanager", [TARGET_DOWN_RESOLVED]),
    "alertmanager/alertmanager_watchdog_firing.json": ("alertmanager", [WATCHDOG_FIRING]),
    "documented/datadog_webhook_default_triggered.json": (
        "datadog",
        [
            (
                "web-03",
                "High CPU on web tier",
                "high",
                "firing",
                "98765432|host:web-03",
                utc("2026-03-14T09:42:05"),
            )
        ],
    ),
    "documented/datadog_webhook_default_recovered.json": (
        "datadog",
        [
            (
                "web-03",
                "High CPU on web tier",
                "high",
                "resolved",
                "98765432|host:web-03",
                utc("2026-03-14T09:55:05"),
            )
        ],
    ),
    "documented/grafana_webhook_firing.json": (
        "grafana",
        [
            (
                "db-01:9100",
                "DiskUsageHigh",
                "critical",
                "firing",
                "a1b2c3d4e5f60718",
                utc("2026-03-14T09:40:00"),
            ),
            (
                "db-02:9100",
                "DiskUsageHigh",
                "critical",
                "firing",
                "0f1e2d3c4b5a6978",
                utc("2026-03-14T09:40:30"),
            ),
        ],
    ),
    "documented/grafana_webhook_resolved.json": (
        "grafana",
        [
            (
                "db-01:9100",
                "DiskUsageHigh",
                "critical",
                "resolved",
                "a1b2c3d4e5f60718",
                utc("2026-03-14T10:05:00"),
            )
        ],
    ),
    "documented/zabbix_webhook_problem.json": (
        "zabbix",
        [("db-01", "MySQL: Service is down", "high", "firing", "1048576", None)],
    ),
    "documented/zabbix_webhook_recovery.json": (
        "zabbix",
        [("db-01", "MySQL: Service is down", "high", "resolved", "1048576", None)],
    ),
}
# Each captured Alertmanager request (real headers, body bytes as sent) -> its body-only twin.
REQUESTS = {
    name.replace(".json", ".request.json"): name
    for name in EXPECTED
    if name.startswith("alertmanager/")
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def delivery(name: str) -> tuple[bytes, str, dict[str, str]]:
    """(body, content type, headers) of a fixture as it arrives on the wire."""
    document = load(name)
    if name in REQUESTS:
        headers = document["headers"]
        return document["body"].encode(), headers["Content-Type"], headers
    if name.startswith("documented/"):
        headers = document["headers"]
        return json.dumps(document["body"]).encode(), headers["Content-Type"], headers
    return (FIXTURES / name).read_bytes(), "application/json", {}


def run(
    source: str | None,
    payload: dict | bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    options: AdapterOptions | None = None,
) -> ParseResult:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse(
        source,
        body=body,
        content_type=content_type,
        headers=headers or {},
        options=options or AdapterOptions(),
    )


def summary(result: ParseResult) -> list[tuple]:
    return [
        (a.asset_name, a.signature, a.severity, a.status, a.fingerprint, a.event_time)
        for a in result.alerts
    ]


def adapter_error(source: str | None, payload: dict | bytes, **kwargs) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        run(source, payload, **kwargs)
    assert caught.value.status_code == 400
    return caught.value


# --- every fixture, explicit source and detection -----------------------------------------


def test_every_fixture_file_is_covered():
    on_disk = {
        str(path.relative_to(FIXTURES))
        for folder in ("alertmanager", "documented")
        for path in (FIXTURES / folder).glob("*.json")
    }
    covered = set(EXPECTED) | set(REQUESTS) | SNS_FIXTURES | {ZABBIX_MEDIA_TYPE_EXPORT}
    assert on_disk == covered


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_with_explicit_source(name):
    source, expected = EXPECTED[name]
    body, content_type, headers = delivery(name)

    result = run(source, body, content_type=content_type, headers=headers)

    assert summary(result) == expected
    assert result.subscription_confirmation is None


@pytest.mark.parametrize("name", sorted(EXPECTED) + sorted(REQUESTS))
def test_fixture_with_detected_source(name):
    _, expected = EXPECTED[REQUESTS.get(name, name)]
    body, content_type, headers = delivery(name)

    assert summary(run(None, body, content_type=content_type, headers=headers)) == expected


def test_adapters_registry_names_the_seven_sources():
    assert set(ADAPTERS) == {
        "generic",
        "alertmanager",
        "datadog",
        "zabbix",
        "grafana",
        "sns",
        "pagerduty",
    }


# --- Alertmanager --------------------------------------------------------------------------


def test_alertmanager_alert_keeps_its_own_status_labels_message_and_raw():
    payload = load("alertmanager/alertmanager_group_firing_1_firing_1_resolved.json")

    firing, resolved = run("alertmanager", payload).alerts

    assert payload["status"] == "firing"
    assert resolved.status == "resolved"
    # The alert as sent, with its group's externalURL (for the silence link).
    assert resolved.raw == {**payload["alerts"][1], "externalURL": payload["externalURL"]}
    assert resolved.message == "Queue payments on web-1 is deep"
    assert resolved.tool_source == "Alertmanager"
    assert resolved.labels == {
        "alertname": "QueueDepthHigh",
        "env": "staging",
        "instance": "web-1",
        "job": "demo",
        "queue": "payments",
        "severity": "warning",
        "team": "payments",
    }
    assert firing.labels["queue"] == "orders"


@pytest.mark.parametrize(
    ("asset_label", "asset"),
    [("instance", "web-1"), ("team", "payments"), ("job", "demo"), ("datacenter", "web-1")],
)
def test_alertmanager_asset_label_is_the_company_choice(asset_label, asset):
    payload = load("alertmanager/alertmanager_group_resolved.json")

    result = run("alertmanager", payload, options=AdapterOptions(asset_label=asset_label))

    assert result.alerts[0].asset_name == asset


@pytest.mark.parametrize(
    ("labels", "asset"),
    [
        ({"host": "db-7", "instance": "10.0.0.7:9100", "job": "node"}, "db-7"),
        ({"instance": "10.0.0.7:9100", "job": "node"}, "10.0.0.7:9100"),
        ({"job": "node"}, "node"),
        ({}, "unknown"),
    ],
)
def test_alertmanager_asset_fallbacks(labels, asset):
    payload = alertmanager_body(labels={"alertname": "Down", **labels})
    options = AdapterOptions(asset_label="nodename")

    assert run("alertmanager", payload, options=options).alerts[0].asset_name == asset


def alertmanager_body(**alert) -> dict:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Down"},
                "annotations": {},
                "startsAt": "2026-03-14T09:00:00.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "abc",
                **alert,
            }
        ],
    }


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("Fatal", "critical"),
        ("error", "high"),
        ("major", "high"),
        ("warning", "medium"),
        ("average", "medium"),
        ("info", "low"),
        ("none", "low"),
        ("sev-unknown", "medium"),
        (None, "medium"),
    ],
)
def test_alertmanager_severity_label(label, severity):
    labels = {"alertname": "Down"} if label is None else {"alertname": "Down", "severity": label}

    assert run("alertmanager", alertmanager_body(labels=labels)).alerts[0].severity == severity


def test_alertmanager_message_falls_back_from_summary_to_description_to_alertname():
    described = alertmanager_body(annotations={"description": "disk 97% full"})

    assert run("alertmanager", described).alerts[0].message == "disk 97% full"
    assert run("alertmanager", alertmanager_body()).alerts[0].message == "Down"


def test_alertmanager_nanosecond_start_time_and_resolved_without_end_time():
    firing = run("alertmanager", alertmanager_body()).alerts[0]
    resolved = run("alertmanager", alertmanager_body(status="resolved")).alerts[0]

    assert firing.event_time == datetime(2026, 3, 14, 9, 0, 0, 123456, tzinfo=UTC)
    assert resolved.event_time is None


def test_alertmanager_alert_without_alertname_is_refused():
    error = adapter_error("alertmanager", alertmanager_body(labels={"instance": "web-1"}))

    assert error.code == "invalid_payload"
    assert error.fields == {"alerts.0.labels": ["Every alert needs an alertname label."]}
    assert "alerts.0.labels" in error.message


def test_alertmanager_bad_status_and_empty_group_are_refused():
    bad_status = adapter_error("alertmanager", alertmanager_body(status="pending"))
    empty = adapter_error("alertmanager", {"version": "4", "alerts": []})

    assert list(bad_status.fields) == ["alerts.0.status"]
    assert list(empty.fields) == ["alerts"]


# --- Grafana -------------------------------------------------------------------------------


def test_grafana_alerts_carry_tool_source_labels_and_their_own_raw():
    payload = load("documented/grafana_webhook_firing.json")["body"]

    first, second = run("grafana", payload).alerts

    assert {first.tool_source, second.tool_source} == {"Grafana"}
    assert first.message == "DiskUsageHigh on db-01:9100"
    assert first.labels["grafana_folder"] == "Production"
    assert second.raw == {**payload["alerts"][1], "externalURL": payload["externalURL"]}
    assert second.raw["values"] == {"A": 91.2, "B": 1}


# --- generic -------------------------------------------------------------------------------


def generic_body(**fields) -> dict:
    return {
        "asset_name": "  db-01 ",
        "signature": "DiskFull",
        "severity": "High",
        "message": "Disk / is 97% full",
        "tool_source": "Nagios",
        **fields,
    }


def test_generic_body_with_every_optional_field():
    body = generic_body(
        timestamp="2026-03-14T11:42:05+02:00",
        status="resolved",
        fingerprint="nagios-123",
        labels={"env": "prod"},
    )

    (alert,) = run("generic", body).alerts

    assert alert.asset_name == "db-01"
    assert alert.signature == "DiskFull"
    assert alert.severity == "high"
    assert alert.message == "Disk / is 97% full"
    assert alert.tool_source == "Nagios"
    assert alert.status == "resolved"
    assert alert.fingerprint == "nagios-123"
    assert alert.event_time == datetime(2026, 3, 14, 9, 42, 5, tzinfo=UTC)
    assert alert.labels == {"env": "prod"}
    assert alert.raw == body


def test_generic_defaults_and_naive_timestamp_read_as_utc():
    (alert,) = run(None, generic_body(timestamp="2026-03-14T09:42:05")).alerts

    assert alert.status == "firing"
    assert alert.fingerprint == ""
    assert alert.labels == {}
    assert alert.event_time == datetime(2026, 3, 14, 9, 42, 5, tzinfo=UTC)
    assert run(None, generic_body()).alerts[0].event_time is None


@pytest.mark.parametrize(
    ("given", "severity"),
    [("CRITICAL", "critical"), ("error", "high"), ("Warning", "medium"), ("info", "low")],
)
def test_generic_severity_is_case_insensitive_with_synonyms(given, severity):
    assert run("generic", generic_body(severity=given)).alerts[0].severity == severity


def test_generic_unknown_severity_names_the_allowed_values():
    error = adapter_error("generic", generic_body(severity="urgent"))

    assert error.code == "invalid_payload"
    assert list(error.fields) == ["severity"]
    assert '"urgent" is not a severity' in error.message
    assert "critical, high, medium, low" in error.message


def test_generic_missing_fields_are_each_named():
    error = adapter_error("generic", {"severity": "low"})

    assert set(error.fields) == {"asset_name", "signature", "message", "tool_source"}
    for name in error.fields:
        assert f"{name}: This field is required." in error.message


def test_generic_nested_label_error_is_flattened():
    error = adapter_error("generic", generic_body(labels={"team": {"name": "dba"}}))

    assert list(error.fields) == ["labels.team"]


def test_generic_long_message_is_truncated():
    (alert,) = run("generic", generic_body(message="x" * 5000)).alerts

    assert alert.message == "x" * 4000


# --- Datadog -------------------------------------------------------------------------------


def test_datadog_default_payload_message_and_labels():
    payload = load("documented/datadog_webhook_default_triggered.json")["body"]

    (alert,) = run("datadog", payload).alerts

    assert alert.tool_source == "Datadog"
    assert alert.message.startswith("CPU usage is above 90% on web-03.\n@webhook-alert-platform")
    assert "%%%" not in alert.message
    assert alert.labels == {"host": "web-03"}
    assert alert.raw == payload


def datadog_template(**fields) -> dict:
    return {
        "title": "[P1] [Triggered on {host:web-01,env:prod}] Disk full",
        "alert_transition": "Triggered",
        "alert_id": "123",
        "alert_cycle_key": "",
        "alert_priority": "",
        "hostname": "",
        "tags": "env:prod,host:web-01,role:db,canary",
        "date": "1773481325000",
        "body": "",
        **fields,
    }


def test_datadog_custom_template():
    (alert,) = run(None, datadog_template()).alerts

    assert (alert.asset_name, alert.signature, alert.severity, alert.status) == (
        "web-01",
        "Disk full",
        "critical",
        "firing",
    )
    assert alert.fingerprint == "123|host:web-01,env:prod"
    assert alert.event_time == datetime(2026, 3, 14, 9, 42, 5, tzinfo=UTC)
    assert alert.labels == {"env": "prod", "host": "web-01", "role": "db", "canary": ""}
    assert alert.message == datadog_template()["title"]


@pytest.mark.parametrize(
    ("fields", "fingerprint"),
    [
        ({"alert_cycle_key": "cycle-9"}, "cycle-9"),
        ({"title": "[Triggered] Disk full"}, "123"),
        ({"alert_id": "", "id": "740526"}, "740526"),
    ],
)
def test_datadog_fingerprint_fallbacks(fields, fingerprint):
    assert run("datadog", datadog_template(**fields)).alerts[0].fingerprint == fingerprint


@pytest.mark.parametrize(
    ("fields", "severity", "status"),
    [
        ({"alert_transition": "Warn", "title": "[Warn] Disk full"}, "medium", "firing"),
        ({"alert_transition": "No Data", "title": "Disk full"}, "medium", "firing"),
        ({"alert_transition": "", "title": "[Re-Triggered] Disk full"}, "high", "firing"),
        ({"alert_transition": "Recovered", "title": "Disk full"}, "high", "resolved"),
        ({"alert_transition": "Warn", "alert_priority": "P4"}, "low", "firing"),
    ],
)
def test_datadog_state_and_severity(fields, severity, status):
    (alert,) = run("datadog", datadog_template(**fields)).alerts

    assert (alert.severity, alert.status) == (severity, status)


@pytest.mark.parametrize(
    ("fields", "asset"),
    [
        ({"hostname": "web-09"}, "web-09"),
        ({"tags": "env:prod"}, "web-01"),
        ({"tags": "", "title": "[Triggered on {service:checkout}] Errors"}, "checkout"),
        ({"tags": ["host:web-05"], "title": "[Triggered] Errors"}, "web-05"),
        ({"tags": "", "title": "[Triggered] Errors"}, "unknown"),
    ],
)
def test_datadog_asset(fields, asset):
    assert run("datadog", datadog_template(**fields)).alerts[0].asset_name == asset


def test_datadog_title_without_state_and_no_transition_is_refused():
    error = adapter_error("datadog", datadog_template(alert_transition="", title="Disk full"))

    assert "Cannot tell the state" in error.message
    assert "Disk full" in error.message


def test_datadog_unknown_state_is_refused():
    error = adapter_error("datadog", datadog_template(alert_transition="Muted"))

    assert "Unknown Datadog alert state 'Muted'" in error.message
    assert list(error.fields) == ["alert_transition"]


def test_datadog_bad_date_and_missing_title_are_refused():
    bad_date = adapter_error("datadog", datadog_template(date="yesterday"))
    no_title = adapter_error("datadog", {"alert_transition": "Triggered"})

    assert list(bad_date.fields) == ["date"]
    assert list(no_title.fields) == ["title"]


def test_datadog_title_with_only_a_state_has_no_signature():
    error = adapter_error("datadog", datadog_template(title="[Triggered]"))

    assert list(error.fields) == ["signature"]


# --- Zabbix --------------------------------------------------------------------------------


def zabbix_problem(**fields) -> dict:
    return {**load("documented/zabbix_webhook_problem.json")["body"], **fields}


def test_zabbix_problem_labels_message_and_raw():
    payload = zabbix_problem()

    (alert,) = run("zabbix", payload).alerts

    assert alert.tool_source == "Zabbix"
    assert alert.labels == {"scope": "availability", "service": "mysql", "env": "prod"}
    assert alert.message.startswith("Problem started at 09:41:52 on 2026.03.14\nProblem name:")
    assert "\r" not in alert.message
    assert alert.raw == payload


def test_zabbix_problem_with_literal_recovery_date_macro_is_accepted():
    payload = zabbix_problem()

    assert payload["event_recovery_date"] == "{EVENT.RECOVERY.DATE}"
    assert run("zabbix", payload).alerts[0].status == "firing"


@pytest.mark.parametrize(
    ("field", "macro"),
    [
        ("host_host", "{HOST.HOST}"),
        ("event_id", "{EVENT.ID}"),
        ("event_value", "{EVENT.VALUE}"),
        ("event_name", "{EVENT.NAME}"),
        ("event_nseverity", "{EVENT.NSEVERITY}"),
        ("event_update_status", "{EVENT.UPDATE.STATUS}"),
        ("event_id", "{$EVENT.PREFIX}-1"),
    ],
)
def test_zabbix_unexpanded_macro_is_refused(field, macro):
    error = adapter_error("zabbix", zabbix_problem(**{field: macro}))

    assert error.code == "unexpanded_macro"
    assert list(error.fields) == [field]
    assert repr(field) in error.message
    assert macro.split("}")[0] + "}" in error.message


def test_zabbix_host_name_is_used_without_host_host():
    assert run("zabbix", zabbix_problem(host_host="")).alerts[0].asset_name == (
        "db-01 (MySQL primary)"
    )


def test_zabbix_update_notification_yields_no_alert():
    result = run("zabbix", zabbix_problem(event_update_status="1"))

    assert result == ParseResult(alerts=[], source="zabbix")


@pytest.mark.parametrize(
    ("nseverity", "severity"),
    [
        ("0", "low"),
        ("1", "low"),
        ("2", "medium"),
        ("3", "medium"),
        ("4", "high"),
        ("5", "critical"),
    ],
)
def test_zabbix_numeric_severity(nseverity, severity):
    assert run("zabbix", zabbix_problem(event_nseverity=nseverity)).alerts[0].severity == severity


def test_zabbix_severity_name_is_used_without_numeric_severity():
    payload = zabbix_problem(event_severity="Disaster")
    del payload["event_nseverity"]

    assert run("zabbix", payload).alerts[0].severity == "critical"


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"event_value": "2"}, "event_value", '"1" (problem) or "0" (recovery)'),
        ({"event_nseverity": "9"}, "event_nseverity", "0 to 5"),
        ({"event_nseverity": "", "event_severity": "Urgent"}, "event_severity", "'Urgent'"),
        ({"event_source": "3"}, "event_source", "trigger events"),
    ],
)
def test_zabbix_bad_values_are_refused(fields, field, fragment):
    error = adapter_error("zabbix", zabbix_problem(**fields))

    assert error.code == "invalid_payload"
    assert list(error.fields) == [field]
    assert fragment in error.message


def test_zabbix_media_type_script_sends_every_field_the_adapter_reads():
    (media_type,) = load(ZABBIX_MEDIA_TYPE_EXPORT)["zabbix_export"]["media_types"]
    script = media_type["script"]
    # The script copies every parameter but these three, then adds the parsed tags.
    assert "key !== 'URL' && key !== 'HTTPProxy' && key !== 'event_tags_json'" in script
    assert "payload.event_tags = JSON.parse(params.event_tags_json)" in script
    sent = {parameter["name"] for parameter in media_type["parameters"]}
    sent = sent - {"URL", "HTTPProxy", "event_tags_json"} | {"event_tags"}

    assert set(ZabbixEventSerializer().fields) <= sent
    for name in (
        "documented/zabbix_webhook_problem.json",
        "documented/zabbix_webhook_recovery.json",
    ):
        assert set(load(name)["body"]) == sent


# --- body decoding, content types and sources ----------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/html; charset=utf-8",
        "multipart/form-data; boundary=x",
    ],
)
def test_unsupported_content_type(content_type):
    with pytest.raises(UnsupportedMediaType) as caught:
        run(None, generic_body(), content_type=content_type)

    assert caught.value.status_code == 415
    assert caught.value.code == "unsupported_media_type"
    assert repr(content_type.split(";")[0]) in caught.value.message
    assert "application/json" in caught.value.message


@pytest.mark.parametrize("source", ["generic", None])
def test_text_plain_is_for_sns_only(source):
    with pytest.raises(UnsupportedMediaType) as caught:
        run(source, generic_body(), content_type="text/plain; charset=UTF-8")

    assert "'text/plain' for generic" in caught.value.message


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", ""]
)
def test_json_content_types_and_none_are_accepted(content_type):
    assert len(run("generic", generic_body(), content_type=content_type).alerts) == 1


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b'{\n  "asset_name": "db-01",\n  "signature": \n}', "malformed_json", "line 4, column 1"),
        (b"", "malformed_json", "empty"),
        (b'{"asset_name": NaN}', "malformed_json", "NaN"),
        (b'[{"asset_name": "db-01"}]', "invalid_payload", "must be a JSON object, not an array"),
        (b'"db-01"', "invalid_payload", "must be a JSON object, not a string"),
        (b'{"asset_name": "caf\xe9"}', "invalid_encoding", "not UTF-8"),
    ],
)
def test_bad_bodies(body, code, fragment):
    error = adapter_error("generic", body)

    assert error.code == code
    assert fragment in error.message


def test_utf8_byte_order_mark_is_accepted():
    body = b"\xef\xbb\xbf" + json.dumps(generic_body()).encode()

    assert run("generic", body).alerts[0].signature == "DiskFull"


def test_undetectable_body_names_the_sources_and_the_explicit_path():
    error = adapter_error(None, {"host": "db-01", "problem": "disk"})

    assert error.code == "unknown_source"
    for name in ADAPTERS:
        assert name in error.message
    assert "/api/webhooks/alerts/<source>" in error.message


def test_unknown_explicit_source_is_not_found():
    with pytest.raises(NotFound) as caught:
        run("nagios", generic_body())

    assert caught.value.status_code == 404
    assert caught.value.code == "unknown_source"
    assert "'nagios'" in caught.value.message
    for name in ADAPTERS:
        assert name in caught.value.message


def test_prometheus_is_an_alias_of_alertmanager():
    payload = load("alertmanager/alertmanager_targetdown_firing.json")

    assert summary(run("Prometheus", payload)) == [TARGET_DOWN_FIRING]


def test_explicit_source_wins_over_detection():
    error = adapter_error("zabbix", load("alertmanager/alertmanager_targetdown_firing.json"))

    assert {"event_id", "event_name", "event_value"} <= set(error.fields)
