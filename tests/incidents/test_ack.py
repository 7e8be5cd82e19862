"""Acknowledging incidents: the service, the incident page, "Take it", the bulk action, the
Incidents page filter, the API, and time to acknowledge on the KPI page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from apps.audit.models import AuditLog
from apps.common.errors import ValidationError
from apps.incidents.choices import ACKNOWLEDGE_AUDIT_ACTION, EventKind, IncidentStatus
from apps.incidents.models import IncidentEvent
from apps.incidents.services import (
    incident_acknowledge,
    incident_status_change,
    incident_take,
)
from apps.kpis.selectors import Period, mtta_summary
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def incident(company_a):
    return IncidentFactory(company=company_a, first_alert_at=T0)


def api(user) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    return APIClient(HTTP_AUTHORIZATION=f"Token {token}")


def ack_api(incident) -> str:
    return reverse("api:incident-acknowledge", args=[incident.pk])


# --- The service ----------------------------------------------------------------------------


def test_acknowledging_records_who_and_when_and_moves_a_new_incident_on(incident, technician_a):
    at = T0 + timedelta(minutes=4)
    incident_acknowledge(incident_id=incident.pk, actor=technician_a, now=at)
    incident.refresh_from_db()
    assert (incident.acknowledged_at, incident.acknowledged_by) == (at, technician_a)
    assert incident.status == IncidentStatus.IN_PROGRESS and incident.is_open
    event = IncidentEvent.objects.get(incident=incident)
    assert (event.kind, event.actor, event.text) == (
        EventKind.ACKNOWLEDGED,
        technician_a,
        f"Acknowledged by {technician_a}",
    )
    audit = AuditLog.objects.get(action=ACKNOWLEDGE_AUDIT_ACTION)
    assert (audit.actor, audit.details["via"]) == (technician_a, "console")


def test_acknowledging_twice_or_a_resolved_incident_is_an_error(incident, technician_a):
    incident_acknowledge(incident_id=incident.pk, actor=technician_a)
    with pytest.raises(ValidationError, match=f"already acknowledged by {technician_a}"):
        incident_acknowledge(incident_id=incident.pk, actor=technician_a)
    incident_status_change(
        incident_id=incident.pk, status=IncidentStatus.RESOLVED, note="Fixed", actor=technician_a
    )
    with pytest.raises(ValidationError, match="resolved incident cannot be acknowledged"):
        incident_acknowledge(incident_id=incident.pk, actor=technician_a)


def test_reopening_clears_the_acknowledgement(incident, technician_a):
    incident_acknowledge(incident_id=incident.pk, actor=technician_a)
    incident_status_change(
        incident_id=incident.pk, status=IncidentStatus.RESOLVED, note="Fixed", actor=technician_a
    )
    incident_status_change(
        incident_id=incident.pk, status=IncidentStatus.IN_PROGRESS, actor=technician_a
    )
    incident.refresh_from_db()
    assert (incident.acknowledged_at, incident.acknowledged_by) == (None, None)


def test_take_it_assigns_and_acknowledges(incident, technician_a, company_admin_a):
    incident_take(incident_id=incident.pk, actor=technician_a)
    incident.refresh_from_db()
    assert (incident.assigned_to, incident.acknowledged_by) == (technician_a, technician_a)
    # Taking over an incident someone acknowledged keeps who acknowledged first.
    incident_take(incident_id=incident.pk, actor=company_admin_a)
    incident.refresh_from_db()
    assert (incident.assigned_to, incident.acknowledged_by) == (company_admin_a, technician_a)


# --- The incident page ----------------------------------------------------------------------


def test_the_acknowledge_button_acknowledges_and_the_page_says_by_whom(
    client, incident, technician_a
):
    client.force_login(technician_a)
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert 'data-testid="acknowledge"' in page
    response = client.post(reverse("incidents:acknowledge", args=[incident.pk]), follow=True)
    body = response.content.decode()
    assert "Acknowledged: escalation stops." in body
    assert f"Acknowledged by <strong>{technician_a}</strong>" in body
    assert 'data-testid="acknowledge"' not in body
    assert 'data-testid="ack-badge"' in body


def test_acknowledging_again_shows_the_error_on_the_page(client, incident, technician_a):
    incident_acknowledge(incident_id=incident.pk, actor=technician_a)
    client.force_login(technician_a)
    response = client.post(reverse("incidents:acknowledge", args=[incident.pk]))
    assert response.status_code == 400
    assert f"already acknowledged by {technician_a}" in response.content.decode()


def test_a_globex_technician_cannot_acknowledge_acmes_incident(client, incident, technician_b):
    client.force_login(technician_b)
    assert client.post(reverse("incidents:acknowledge", args=[incident.pk])).status_code == 404
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_acknowledging_needs_a_post(client, incident, technician_a):
    client.force_login(technician_a)
    assert client.get(reverse("incidents:acknowledge", args=[incident.pk])).status_code == 405


def test_bulk_acknowledge(client, company_a, technician_a):
    incidents = [IncidentFactory(company=company_a) for _ in range(3)]
    incident_acknowledge(incident_id=incidents[0].pk, actor=technician_a)
    client.force_login(technician_a)
    response = client.post(
        "/incidents/bulk/", {"ids": [i.pk for i in incidents], "action": "acknowledge"}, follow=True
    )
    body = response.content.decode()
    assert f"2 acknowledged: #{incidents[1].pk}, #{incidents[2].pk}." in body
    assert f"#{incidents[0].pk} skipped: The incident is already acknowledged" in body


def test_the_incidents_page_filters_acknowledged_and_unacknowledged(
    client, company_a, technician_a
):
    acknowledged, waiting = (IncidentFactory(company=company_a) for _ in range(2))
    incident_acknowledge(incident_id=acknowledged.pk, actor=technician_a)
    client.force_login(technician_a)
    for status, expected in (("acknowledged", acknowledged), ("unacknowledged", waiting)):
        response = client.get(reverse("incidents:list"), {"status": status})
        assert [i.pk for i in response.context["incident_page"].rows] == [expected.pk]


# --- The API --------------------------------------------------------------------------------


def test_the_api_acknowledges(incident, technician_a):
    response = api(technician_a).post(ack_api(incident))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["acknowledged_by"]["email"] == "tech@acme.example"
    assert body["acknowledged_at"] is not None and body["status"] == "in_progress"


def test_the_api_refuses_a_second_acknowledgement_in_its_error_shape(incident, technician_a):
    api(technician_a).post(ack_api(incident))
    response = api(technician_a).post(ack_api(incident))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert "already acknowledged" in response.json()["message"]


def test_the_api_hides_another_companys_incident(incident, technician_b):
    response = api(technician_b).post(ack_api(incident))
    assert response.status_code == 404
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_the_api_needs_a_token(incident):
    assert APIClient().post(ack_api(incident)).status_code == 401


def test_the_api_filters_by_acknowledgement(company_a, technician_a):
    acknowledged, waiting = (IncidentFactory(company=company_a) for _ in range(2))
    incident_acknowledge(incident_id=acknowledged.pk, actor=technician_a)
    client = api(technician_a)
    for value, expected in (("true", acknowledged), ("false", waiting)):
        response = client.get(reverse("api:incident-list"), {"acknowledged": value})
        assert [row["id"] for row in response.json()["results"]] == [expected.pk]
    response = client.get(reverse("api:incident-list"), {"acknowledged": "maybe"})
    assert response.status_code == 400


# --- Time to acknowledge --------------------------------------------------------------------


def test_mtta_averages_first_alert_to_acknowledgement_of_the_range(company_a, technician_a):
    for minutes in (4, 10):
        incident = IncidentFactory(company=company_a, first_alert_at=T0)
        incident_acknowledge(
            incident_id=incident.pk, actor=technician_a, now=T0 + timedelta(minutes=minutes)
        )
    IncidentFactory(company=company_a, first_alert_at=T0)  # not acknowledged: not counted
    late = IncidentFactory(company=company_a, first_alert_at=T0)
    incident_acknowledge(incident_id=late.pk, actor=technician_a, now=T0 + timedelta(days=3))
    period = Period(first_day=date(2026, 3, 2), last_day=date(2026, 3, 3), tz=UTC)
    mtta = mtta_summary(company_ids=[company_a.pk], period=period)
    assert (mtta.acknowledged, mtta.overall) == (2, timedelta(minutes=7))
    assert mtta_summary(company_ids=[], period=period).acknowledged == 0


def test_the_kpi_page_shows_mtta(client, company_a, technician_a):
    incident = IncidentFactory(company=company_a, first_alert_at=T0)
    incident_acknowledge(incident_id=incident.pk, actor=technician_a, now=T0 + timedelta(minutes=6))
    client.force_login(technician_a)
    response = client.get(reverse("kpis:index"), {"from": "2026-03-01", "to": "2026-03-05"})
    assert response.status_code == 200
    assert response.context["mtta"].overall == timedelta(minutes=6)
    assert 'data-kpi="mtta"' in response.content.decode()
