"""PagerDuty Events v2 ``acknowledge``: the tool's acknowledgement of a dedup_key
acknowledges the open incident that alert landed in, as the integration, and stops its
escalation; resolve keeps resolving."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.roles import Role
from apps.audit.models import AuditLog
from apps.incidents.choices import ACKNOWLEDGE_AUDIT_ACTION, EventKind
from apps.incidents.models import Incident, IncidentEvent
from apps.oncall.choices import StopReason
from apps.oncall.escalation import escalations_sweep
from apps.oncall.models import EscalationPage, IncidentEscalation
from tests.alerts.test_pagerduty import send, trigger
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def acknowledge(key: str, dedup_key: str = "samplekeyhere") -> dict:
    """PagerDuty's documented acknowledge event."""
    return {"routing_key": key, "dedup_key": dedup_key, "event_action": "acknowledge"}


def resolve(key: str, dedup_key: str = "samplekeyhere") -> dict:
    return {"routing_key": key, "dedup_key": dedup_key, "event_action": "resolve"}


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    def post(event):
        with django_capture_on_commit_callbacks(execute=True):
            response = send(client, event)
        assert response.status_code == 202, response.content
        assert response.json() == {
            "status": "success",
            "message": "Event processed",
            "dedup_key": event["dedup_key"],
        }
        return response

    return post


def test_acknowledge_acknowledges_the_incident_as_the_integration(post, tenant):
    post(trigger(tenant.key))
    incident = Incident.objects.get(company=tenant.company)
    assert incident.acknowledged_at is None

    post(acknowledge(tenant.key))

    incident.refresh_from_db()
    assert incident.acknowledged_at is not None
    assert incident.acknowledged_by is None
    assert incident.status == "in_progress"
    event = IncidentEvent.objects.get(incident=incident, kind=EventKind.ACKNOWLEDGED)
    assert event.text == "Acknowledged by PagerDuty event"
    assert event.actor is None
    audit = AuditLog.objects.get(action=ACKNOWLEDGE_AUDIT_ACTION, target_id=str(incident.pk))
    assert audit.actor_repr == "system"
    assert audit.details["via"] == "integration"
    assert audit.details["integration"] == "PagerDuty integration"
    assert audit.company_id == tenant.company.pk


def test_acknowledge_stops_the_escalation(post, tenant):
    UserFactory(role=Role.COMPANY_ADMIN, companies=[tenant.company])
    post(trigger(tenant.key, payload={**trigger(tenant.key)["payload"], "severity": "critical"}))
    incident = Incident.objects.get(company=tenant.company)
    escalation = IncidentEscalation.objects.get(incident=incident)

    post(acknowledge(tenant.key))
    # Past every step of the default policy (company admins at 15 min, MSP admins at 30).
    escalations_sweep(now=timezone.now() + timedelta(hours=2))

    escalation.refresh_from_db()
    assert escalation.stop_reason == StopReason.ACKNOWLEDGED
    assert escalation.finished_at is not None
    assert not EscalationPage.objects.filter(incident=incident, step__gte=1).exists()


def test_acknowledge_then_resolve_still_resolves(post, tenant):
    post(trigger(tenant.key))
    post(acknowledge(tenant.key))
    post(resolve(tenant.key))
    incident = Incident.objects.get(company=tenant.company)
    assert incident.status == "resolved"
    assert incident.resolution == "source"
    assert incident.acknowledged_at is not None


def test_a_repeated_or_late_acknowledge_changes_nothing(post, tenant):
    post(trigger(tenant.key))
    post(acknowledge(tenant.key))
    incident = Incident.objects.get(company=tenant.company)
    first = incident.acknowledged_at
    post(acknowledge(tenant.key))
    post(resolve(tenant.key))
    post(acknowledge(tenant.key))
    incident.refresh_from_db()
    assert incident.acknowledged_at == first
    assert IncidentEvent.objects.filter(incident=incident, kind=EventKind.ACKNOWLEDGED).count() == 1


def test_acknowledge_of_an_unknown_key_is_accepted_and_touches_nothing(post, tenant):
    post(trigger(tenant.key))
    post(acknowledge(tenant.key, dedup_key="never-triggered"))
    assert Incident.objects.get(company=tenant.company).acknowledged_at is None


def test_another_company_cannot_acknowledge_with_the_same_dedup_key(post, tenant, other_tenant):
    post(trigger(tenant.key))
    post(acknowledge(other_tenant.key))
    assert Incident.objects.get(company=tenant.company).acknowledged_at is None


def test_acknowledge_without_dedup_key_is_an_invalid_event(client, tenant):
    response = send(client, {"routing_key": tenant.key, "event_action": "acknowledge"})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "invalid event"
    assert any("dedup_key" in error for error in body["errors"])


def test_acknowledge_on_the_generic_endpoint_names_the_incident(
    tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tenant.post(trigger(tenant.key))
    incident = Incident.objects.get(company=tenant.company)
    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.post(acknowledge(tenant.key))
    assert response.status_code == 202
    assert response.json()["acknowledged_incident"] == incident.pk
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None
