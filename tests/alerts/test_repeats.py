"""Re-notifications of one occurrence update its alert instead of adding rows, for every
adapter (docs/decisions.md, "Repeat notifications")."""

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.alerts.models import DELIVERY_IDS_KEPT, Alert
from apps.incidents.models import Incident
from apps.tenants.models import Company
from tests.alerts.conftest import WEBHOOK, generic

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    return data.get("body", data) if "_source" in data else data


def recent(minutes: float = 0) -> str:
    return (timezone.now() - timedelta(minutes=10 + minutes)).isoformat()


def alertmanager(*, starts_at: str | None = None, summary: str = "Heartbeat") -> dict:
    body = fixture("alertmanager/alertmanager_watchdog_firing.json")
    body["alerts"][0]["startsAt"] = starts_at or recent()
    body["alerts"][0]["annotations"]["summary"] = summary
    return body


def post(tenant, body: dict, *, source: str = "", delivery: str = "") -> dict:
    path = f"{WEBHOOK}/{source}" if source else WEBHOOK
    headers = {"X-Delivery-ID": delivery} if delivery else {}
    response = tenant.post(body, path=path, **headers)
    assert response.status_code == 202, response.content
    return response.json()


STARTS_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def _grafana() -> dict:
    body = fixture("documented/grafana_webhook_firing.json")
    for alert in body["alerts"]:
        alert["startsAt"] = STARTS_AT.isoformat()
    return body


def _datadog(transition: str) -> dict:
    body = fixture("documented/datadog_webhook_default_triggered.json")
    body["title"] = body["title"].replace("Triggered", transition)
    body["id"] = f"event-{transition}"
    return body


def _zabbix() -> dict:
    return fixture("documented/zabbix_webhook_problem.json")


def _generic() -> dict:
    return generic(timestamp=STARTS_AT.isoformat(), fingerprint="fp-1")


# (source in the URL, first notification, its re-notification)
REPEATS = {
    "alertmanager": (
        "alertmanager",
        alertmanager(starts_at=STARTS_AT.isoformat(), summary="first"),
        alertmanager(starts_at=STARTS_AT.isoformat(), summary="latest"),
    ),
    "grafana": ("grafana", _grafana(), _grafana()),
    "datadog renotify": ("datadog", _datadog("Triggered"), _datadog("Re-Triggered")),
    "zabbix": ("zabbix", _zabbix(), {**_zabbix(), "alert_message": "still down"}),
    "generic": ("generic", _generic(), {**_generic(), "message": "still full"}),
}


@pytest.mark.parametrize("name", REPEATS)
def test_a_repeat_updates_the_stored_alert(tenant, name):
    source, first, repeat = copy.deepcopy(REPEATS[name])
    stored = post(tenant, first, source=source, delivery="d-1")
    again = post(tenant, repeat, source=source, delivery="d-2")
    assert again["alert_ids"] == stored["alert_ids"]
    assert (stored["repeats"], again["repeats"]) == (0, len(again["alert_ids"]))
    alerts = Alert.objects.filter(company=tenant.company)
    assert alerts.count() == len(stored["alert_ids"])
    for alert in alerts:
        assert alert.repeat_count == 1
        assert alert.delivery_ids == ["d-1", "d-2"]
        assert alert.delivery_id == "d-1"
        assert alert.last_seen_at >= alert.received_at
        sent = [{**a, "externalURL": repeat["externalURL"]} for a in repeat.get("alerts", [])]
        assert alert.raw in (repeat, *sent)


def test_the_latest_values_win_and_the_occurrence_keeps_its_start(tenant):
    first = post(tenant, alertmanager(starts_at=STARTS_AT.isoformat(), summary="first"))
    post(tenant, alertmanager(starts_at=STARTS_AT.isoformat(), summary="latest"))
    alert = Alert.objects.get(pk=first["alert_ids"][0])
    assert alert.message == "latest"
    assert alert.event_time == STARTS_AT
    assert alert.delivery_ids[0].startswith("aw-") and len(alert.delivery_ids) == 2


def test_a_new_start_is_a_new_occurrence(tenant):
    post(tenant, alertmanager(starts_at=recent(minutes=5)))
    post(tenant, alertmanager(starts_at=recent()))
    assert Alert.objects.filter(company=tenant.company).count() == 2


def test_generic_posts_without_a_timestamp_each_happen_at_their_receipt(tenant):
    post(tenant, generic())
    post(tenant, generic())
    assert Alert.objects.filter(company=tenant.company).count() == 2


def test_datadog_transitions_are_occurrences_of_their_own(tenant):
    post(tenant, _datadog("Warn"))
    post(tenant, _datadog("Triggered"))
    post(tenant, _datadog("Renotify"))
    post(tenant, _datadog("Re-Warn"))
    counts = sorted(Alert.objects.values_list("repeat_count", flat=True))
    assert counts == [1, 1]


def test_zabbix_problems_with_other_event_ids_stay_apart(tenant):
    post(tenant, _zabbix())
    post(tenant, {**_zabbix(), "event_id": "1048577"})
    assert Alert.objects.filter(company=tenant.company).count() == 2


def test_companies_do_not_share_occurrences(tenant, other_tenant):
    post(tenant, _zabbix())
    post(other_tenant, _zabbix())
    assert list(Alert.objects.values_list("repeat_count", flat=True)) == [0, 0]


def test_a_body_repeating_an_alert_stores_it_once(tenant):
    body = alertmanager()
    body["alerts"].append(copy.deepcopy(body["alerts"][0]))
    answer = post(tenant, body)
    assert answer["alert_ids"][0] == answer["alert_ids"][1]
    assert answer["repeats"] == 1
    assert Alert.objects.get().repeat_count == 1


def test_repeats_leave_the_incident_counts_alone(tenant, django_capture_on_commit_callbacks):
    for _ in range(6):
        with django_capture_on_commit_callbacks(execute=True):
            post(tenant, alertmanager(starts_at=STARTS_AT.isoformat()))
    incident = Incident.objects.get(company=tenant.company)
    assert (incident.alert_count, incident.open_alert_count) == (1, 1)
    assert Alert.objects.get().repeat_count == 5


def test_after_a_resolve_the_same_key_is_a_new_occurrence(
    tenant, django_capture_on_commit_callbacks
):
    firing = generic(timestamp=STARTS_AT.isoformat(), fingerprint="fp-1")
    resolved = {**firing, "status": "resolved", "timestamp": recent(minutes=-5)}
    for body in (firing, firing, resolved, resolved, firing):
        with django_capture_on_commit_callbacks(execute=True):
            post(tenant, body)
    rows = list(Alert.objects.order_by("id").values_list("status", "repeat_count"))
    # The second resolve arrived after correlation had used the first: a new occurrence.
    assert rows == [("firing", 1), ("resolved", 0), ("resolved", 0), ("firing", 0)]


def test_a_retried_delivery_is_not_a_repeat(tenant):
    post(tenant, _zabbix(), delivery="d-1")
    again = post(tenant, _zabbix(), delivery="d-1")
    assert again["duplicate"] is True
    assert Alert.objects.get().repeat_count == 0


def test_delivery_ids_keep_the_latest(tenant):
    Company.objects.filter(pk=tenant.company.pk).update(rate_limit_burst=1000)
    for n in range(DELIVERY_IDS_KEPT + 2):
        post(tenant, _zabbix(), delivery=f"d-{n}")
    alert = Alert.objects.get()
    assert alert.repeat_count == DELIVERY_IDS_KEPT + 1
    assert alert.delivery_ids[0] == "d-2"
    assert alert.delivery_ids[-1] == f"d-{DELIVERY_IDS_KEPT + 1}"
    assert len(alert.delivery_ids) == DELIVERY_IDS_KEPT


def test_a_repeat_of_a_batch_is_one_statement(tenant, django_assert_max_num_queries):
    body = fixture("alertmanager/alertmanager_group_firing_2_alerts.json")
    for alert in body["alerts"]:
        alert["startsAt"] = STARTS_AT.isoformat()
    post(tenant, body)
    # The upsert, inside the test's transaction with its savepoint and release.
    with django_assert_max_num_queries(3):
        answer = post(tenant, body)
    assert answer["repeats"] == 2
