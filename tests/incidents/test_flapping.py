"""Flapping: firing → resolved → firing again within the window stays one incident,
back open silently (no second assignment or notification), marked from the third return."""

import pytest

from apps.alerts.services import alerts_ingest
from apps.audit.models import AuditLog
from apps.incidents.correlation import correlate_company
from apps.incidents.models import Incident
from apps.incidents.tasks import after_correlation
from apps.notifications.models import Notification
from tests.factories import UserFactory
from tests.incidents.test_cascades import T0, alert, deliver

pytestmark = pytest.mark.django_db


def sweep_as_the_worker_does(company, *alerts):
    alerts_ingest(
        company=company,
        alerts=list(alerts),
        source="generic",
        delivery_id="",
        received_at=T0.replace(day=T0.day + 1),
    )
    after_correlation({company.pk: correlate_company(company_id=company.pk)})


def test_a_flapping_alert_is_one_incident_assigned_and_announced_once(company_a):
    technician = UserFactory(role="Technician", companies=[company_a])
    admin = UserFactory(role="Company Admin", companies=[company_a])
    for flap in range(5):
        start = flap * 120
        sweep_as_the_worker_does(company_a, alert("web-01", "http_down", start))
        sweep_as_the_worker_does(
            company_a, alert("web-01", "http_down", start + 30, status="resolved")
        )

    incident = Incident.objects.get()
    assert (incident.flap_count, incident.flapping, incident.alert_count) == (4, True, 5)
    assert (incident.status, incident.resolution) == ("resolved", "source")
    assert incident.assigned_to == technician
    assert AuditLog.objects.filter(action="incident_assigned").count() == 1
    # The technician is on call: escalation pages them (after commit), not the announcement.
    titles = list(Notification.objects.filter(user=technician).values_list("title", flat=True))
    assert titles == ["Assigned to you: http_down on web-01"]
    titles = list(Notification.objects.filter(user=admin).values_list("title", flat=True))
    assert titles == ["Critical: http_down on web-01"]
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds.count("flapping") == 1
    assert kinds.count("resolved_by_source") == 3  # none once it is marked flapping


def test_firing_long_after_the_resolution_is_a_new_incident(company_a):
    deliver(company_a, alert("web-01", "http_down", 0))
    deliver(company_a, alert("web-01", "http_down", 30, status="resolved"))
    deliver(company_a, alert("web-01", "http_down", 3600))
    assert Incident.objects.count() == 2


def test_a_flap_after_a_long_firing_still_finds_its_incident(company_a):
    deliver(company_a, alert("web-01", "http_down", 0))
    deliver(company_a, alert("web-01", "http_down", 3600, status="resolved"))
    deliver(company_a, alert("web-01", "http_down", 3660))
    incident = Incident.objects.get()
    assert (incident.status, incident.flap_count, incident.alert_count) == ("new", 1, 2)
