"""The alert read API: tenant scoping, filters, and the fields that trace a delivery from
the monitoring tool to the incident it landed in."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db

LIST = reverse("api:alert-list")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def api(user) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    return APIClient(HTTP_AUTHORIZATION=f"Token {token}")


def detail(alert) -> str:
    return reverse("api:alert-detail", args=[alert.pk])


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_no_token_is_401_in_error_shape():
    response = APIClient().get(LIST)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


# --- Tenant scoping --------------------------------------------------------------------------


@pytest.fixture
def two_tenants(company_a, company_b):
    return AlertFactory(company=company_a), AlertFactory(company=company_b)


def test_technician_lists_only_their_company(technician_a, two_tenants):
    mine, _ = two_tenants
    assert listed_ids(api(technician_a).get(LIST)) == [mine.pk]


def test_other_company_alert_is_404(technician_a, two_tenants):
    mine, theirs = two_tenants
    client = api(technician_a)
    assert client.get(detail(mine)).status_code == 200
    response = client.get(detail(theirs))
    assert response.status_code == 404
    assert set(response.json()) == {"error", "message"}


def test_company_filter_does_not_reach_another_company(technician_a, two_tenants):
    assert listed_ids(api(technician_a).get(LIST, {"company": "globex"})) == []


def test_msp_admin_sees_every_company(msp_admin, two_tenants):
    assert set(listed_ids(api(msp_admin).get(LIST))) == {a.pk for a in two_tenants}


# --- Filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "match", "other"),
    [
        ("status", "resolved", {"status": "resolved"}, {"status": "firing"}),
        ("severity", "critical", {"severity": "critical"}, {"severity": "low"}),
        ("asset", "db-01", {"asset_name": "db-01"}, {"asset_name": "db-011"}),
        ("signature", "DiskFull", {"signature": "DiskFull"}, {"signature": "HighCPU"}),
        ("tool_source", "Zabbix", {"tool_source": "Zabbix"}, {"tool_source": "Datadog"}),
        ("fingerprint", "fp-a", {"fingerprint": "fp-a"}, {"fingerprint": "fp-b"}),
        ("delivery_id", "d-1", {"delivery_ids": ["d-0", "d-1"]}, {"delivery_ids": ["d-2"]}),
        (
            "since",
            T0.isoformat(),
            {"event_time": T0},
            {"event_time": T0 - timedelta(seconds=1)},
        ),
        (
            "until",
            T0.isoformat(),
            {"event_time": T0 - timedelta(seconds=1)},
            {"event_time": T0},
        ),
    ],
)
def test_filter_includes_matches_and_excludes_the_rest(
    technician_a, company_a, param, value, match, other
):
    included = AlertFactory(company=company_a, **match)
    AlertFactory(company=company_a, **other)
    assert listed_ids(api(technician_a).get(LIST, {param: value})) == [included.pk]


def test_company_filter_by_slug(msp_admin, two_tenants):
    acme, _ = two_tenants
    assert listed_ids(api(msp_admin).get(LIST, {"company": "acme"})) == [acme.pk]


def test_incident_filter(technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    joined = AlertFactory(incident=incident)
    AlertFactory(incident=IncidentFactory(company=company_a))
    AlertFactory(company=company_a)
    response = api(technician_a).get(LIST, {"incident": incident.pk})
    assert listed_ids(response) == [joined.pk]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "open"),
        ("severity", "urgent"),
        ("incident", "first"),
        ("incident", "1.5"),
        ("until", "tomorrow"),
    ],
)
def test_invalid_filter_value_is_400_in_error_shape(technician_a, param, value):
    response = api(technician_a).get(LIST, {param: value})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == [param]


# --- Representation --------------------------------------------------------------------------


def test_alert_traces_its_delivery_to_its_incident(technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    alert = AlertFactory(
        incident=incident,
        delivery_id="dd-7f3a",
        delivery_ids=["dd-7f3a", "dd-80b1"],
        repeat_count=1,
        fingerprint="a1b2c3",
        event_time=T0,
        received_at=T0 + timedelta(seconds=3),
    )
    client = api(technician_a)
    assert listed_ids(client.get(LIST, {"delivery_id": "dd-80b1"})) == [alert.pk]
    row = client.get(LIST, {"delivery_id": "dd-7f3a"}).json()["results"][0]
    assert row["id"] == alert.pk
    assert row["delivery_id"] == "dd-7f3a"
    assert row["delivery_ids"] == ["dd-7f3a", "dd-80b1"]
    assert row["repeat_count"] == 1
    assert row["fingerprint"] == "a1b2c3"
    assert row["event_time"] == "2026-03-02T12:00:00Z"
    assert row["received_at"] == "2026-03-02T12:00:03Z"
    assert row["incident"] == incident.pk
    assert row["company"] == "acme"
    assert "raw" not in row
    landed_in = client.get(row["incident_url"]).json()
    assert landed_in["id"] == incident.pk
    assert alert.pk in [a["id"] for a in landed_in["alerts"]]


def test_uncorrelated_alert_has_no_incident(technician_a, company_a):
    AlertFactory(company=company_a)
    row = api(technician_a).get(LIST).json()["results"][0]
    assert row["incident"] is None
    assert row["incident_url"] is None


def test_raw_payload_only_on_retrieve(technician_a, company_a):
    alert = AlertFactory(company=company_a, raw={"title": "CPU above 90%"}, labels={"a": "b"})
    row = api(technician_a).get(detail(alert)).json()
    assert row["raw"] == {"title": "CPU above 90%"}
    assert row["labels"] == {"a": "b"}
    assert row["url"] == f"http://testserver{detail(alert)}"


def test_newest_event_first_across_pages(technician_a, company_a):
    alerts = [AlertFactory(company=company_a, event_time=T0) for _ in range(3)]
    alerts.append(AlertFactory(company=company_a, event_time=T0 - timedelta(minutes=1)))
    client = api(technician_a)
    seen = []
    url, params = LIST, {"page_size": 1}
    while url:
        page = client.get(url, params).json()
        seen += [row["id"] for row in page["results"]]
        url, params = page["next"], None
    assert seen == [a.pk for a in (*reversed(alerts[:3]), alerts[3])]


def test_list_queries_do_not_grow_with_rows(technician_a, company_a, django_assert_max_num_queries):
    incident = IncidentFactory(company=company_a)
    AlertFactory.create_batch(15, incident=incident)
    AlertFactory.create_batch(15, company=company_a)
    client = api(technician_a)
    with django_assert_max_num_queries(4):
        response = client.get(LIST)
    assert len(response.json()["results"]) == 30
