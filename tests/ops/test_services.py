"""The watchdog: platform incidents opened and resolved through the product's own path,
announced to the MSP admins only."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.accounts.permissions import scope
from apps.alerts import services as alerts_services
from apps.alerts.services import alerts_release
from apps.incidents.correlation import correlate_companies, correlate_company
from apps.incidents.models import Incident
from apps.notifications.models import Notification
from apps.oncall.escalation import escalations_sweep
from apps.oncall.models import IncidentEscalation
from apps.ops.selectors import failing_escalations
from apps.ops.services import (
    ALERTS_QUARANTINED,
    CORRELATION_LAGGING,
    ESCALATIONS_FAILING,
    PLATFORM_SLUG,
    WORKER_SILENT,
    heartbeat_record,
    platform_company,
    watchdog_run,
)
from apps.tenants.models import Company
from tests.incidents.test_correlation import alert, ingest
from tests.incidents.test_quarantine import stored
from tests.oncall.test_escalation import _first_steps, _poison_page_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(msp_admin, company_admin_a, technician_a):
    return {"msp": msp_admin, "admin": company_admin_a, "tech": technician_a}


def platform_incidents():
    return Incident.objects.filter(company__slug=PLATFORM_SLUG)


def stop_worker(settings):
    heartbeat_record(now=timezone.now() - timedelta(seconds=settings.OPS_HEARTBEAT_MAX_AGE + 1))


def test_all_well_reports_nothing(worker_alive, people):
    assert watchdog_run() == []
    assert not platform_incidents().exists()
    assert not Notification.objects.exists()


def test_platform_company_is_made_once():
    company = platform_company()
    assert platform_company() == company
    assert Company.objects.filter(slug=PLATFORM_SLUG).count() == 1


def test_dead_worker_opens_an_incident_for_msp_admins_then_resolves(
    people, settings, django_capture_on_commit_callbacks
):
    stop_worker(settings)
    with django_capture_on_commit_callbacks(execute=True):
        reported = watchdog_run()
    assert [a.signature for a in reported] == [WORKER_SILENT.signature]
    incident = platform_incidents().get()
    assert incident.signature == WORKER_SILENT.signature
    assert incident.severity == "critical" and incident.is_open and incident.visible
    notified = Notification.objects.filter(url=f"/incidents/{incident.pk}/")
    assert [n.user for n in notified] == [people["msp"]]
    assert notified.get().level == "critical"

    # Still failing: no second alert, no second notification.
    assert watchdog_run() == []
    assert notified.count() == 1 and incident.alerts.count() == 1

    heartbeat_record(now=timezone.now())
    reported = watchdog_run()
    assert [(a.signature, a.status) for a in reported] == [(WORKER_SILENT.signature, "resolved")]
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolution == "source"
    assert watchdog_run() == []


def test_correlation_lag_opens_and_resolves_its_incident(
    people, worker_alive, company_a, stored_alert, settings
):
    stored_alert(company_a, settings.OPS_CORRELATION_LAG_MAX + 30)
    [alert] = watchdog_run()
    assert alert.signature == CORRELATION_LAGGING.signature
    assert "Acme" not in alert.message
    incident = platform_incidents().get()
    assert incident.signature == CORRELATION_LAGGING.signature and incident.is_open

    correlate_company(company_id=company_a.pk)
    [alert] = watchdog_run()
    assert alert.status == "resolved"
    incident.refresh_from_db()
    assert incident.status == "resolved"


@pytest.mark.django_db(transaction=True)
def test_the_incident_is_stored_even_when_redis_is_down(people, settings, monkeypatch):
    """Committed for real (autocommit, as in beat): the after-commit step that fails comes
    after the incident and its notification are stored, and its failure is only logged."""

    def redis_down(company_id):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(alerts_services, "schedule_correlation", redis_down)
    stop_worker(settings)
    watchdog_run()
    incident = platform_incidents().get()
    assert Notification.objects.filter(user=people["msp"], url__contains=str(incident.pk))
    assert watchdog_run() == []


def test_a_manually_resolved_incident_reopens_while_the_condition_lasts(people, settings):
    stop_worker(settings)
    watchdog_run()
    Incident.objects.filter(company__slug=PLATFORM_SLUG).update(status="resolved", accepting=False)
    watchdog_run()
    assert platform_incidents().filter(status="new").count() == 1


def test_platform_incidents_are_for_msp_admins_only(people, settings, client):
    stop_worker(settings)
    watchdog_run()
    incident = platform_incidents().get()
    for role in ("admin", "tech"):
        user = people[role]
        assert not scope(Incident.objects.filter(pk=incident.pk), user).exists()
        client.force_login(user)
        assert client.get(f"/incidents/{incident.pk}/").status_code == 404
        for page in ("/dashboard/incidents/", "/api/v1/incidents/", "/api/v1/alerts/"):
            response = client.get(page)
            assert response.status_code == 200
            assert WORKER_SILENT.signature not in response.content.decode()
        assert not Notification.objects.filter(user=user).exists()
    client.force_login(people["msp"])
    assert client.get(f"/incidents/{incident.pk}/").status_code == 200
    assert WORKER_SILENT.signature in client.get("/api/v1/incidents/").content.decode()


def test_a_failing_escalation_opens_a_platform_incident_until_it_pages_again(
    people, worker_alive, company_a, django_capture_on_commit_callbacks, client
):
    """Nobody is paged about an incident whose escalation fails: the MSP admins are told
    through a platform incident naming it and the error, resolved once it pages again."""
    now = timezone.now()
    stuck = _first_steps([company_a], 2, now)[0]
    _poison_page_rows(stuck.pk)
    escalations_sweep(now=now)

    with django_capture_on_commit_callbacks(execute=True):
        [alert] = watchdog_run()
    assert alert.signature == ESCALATIONS_FAILING.signature
    assert alert.message == (
        f"Escalation is failing for 1 incident(s) (#{stuck.pk}): nobody is paged about them "
        "until it runs again. Last error: ProgrammingError: poison"
    )
    incident = platform_incidents().get()
    assert incident.is_open and incident.signature == ESCALATIONS_FAILING.signature
    notified = Notification.objects.filter(url=f"/incidents/{incident.pk}/")
    assert [n.user for n in notified] == [people["msp"]]
    assert watchdog_run() == []
    client.force_login(people["msp"])
    failing = client.get(reverse("admin:oncall_incidentescalation_changelist"), {"failing": "yes"})
    assert [e.incident_id for e in failing.context["cl"].result_list] == [stuck.pk]
    assert "ProgrammingError: poison" in failing.content.decode()

    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_poison_page ON oncall_escalationpage")
    assert escalations_sweep(now=now + timedelta(minutes=1)) == 1
    [alert] = watchdog_run()
    assert alert.status == "resolved"
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert not IncidentEscalation.objects.filter(failures__gt=0).exists()


def test_a_quarantined_alert_opens_a_platform_incident_until_it_is_released(
    people, worker_alive, company_a, django_capture_on_commit_callbacks
):
    """An alert correlation fails on is set aside and opens no incident: the MSP admins are
    told through a platform incident naming it and the error, resolved once released."""
    ingest(company_a, alert())
    correlate_companies(company_ids=[company_a.pk])
    poison = stored(company_a)
    correlate_companies(company_ids=[company_a.pk])
    poison.refresh_from_db()
    assert poison.quarantined_at is not None

    with django_capture_on_commit_callbacks(execute=True):
        [reported] = watchdog_run()
    assert reported.signature == ALERTS_QUARANTINED.signature
    assert reported.message.startswith(
        f"1 alert(s) quarantined (#{poison.pk}): correlation fails on each alone, so they "
        "open no incident until an MSP admin releases them (Django admin, Alerts, filter "
        "quarantined). First error: OverflowError"
    )
    incident = platform_incidents().get()
    assert incident.is_open and incident.signature == ALERTS_QUARANTINED.signature
    notified = Notification.objects.filter(url=f"/incidents/{incident.pk}/")
    assert [n.user for n in notified] == [people["msp"]]
    assert watchdog_run() == []

    # A second one: the open incident's alert says so, with no second alert or notice.
    second = stored(company_a, fingerprint="fp-2", asset_name="srv-app-02")
    correlate_companies(company_ids=[company_a.pk])
    assert watchdog_run() == []
    [told] = incident.alerts.all()
    assert told.message.startswith(f"2 alert(s) quarantined (#{poison.pk}, #{second.pk})")
    assert notified.count() == 1

    assert alerts_release(alert_ids=[poison.pk, second.pk]) == 2
    [reported] = watchdog_run()
    assert reported.status == "resolved"
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_a_failing_escalation_of_an_acknowledged_incident_is_not_reported(worker_alive, company_a):
    """Someone is on it: nobody waits for its pages (it stops at its next attempt)."""
    now = timezone.now()
    stuck = _first_steps([company_a], 1, now)[0]
    _poison_page_rows(stuck.pk)
    escalations_sweep(now=now)
    assert failing_escalations().ids == [stuck.pk]
    Incident.objects.filter(pk=stuck.pk).update(acknowledged_at=now)
    assert failing_escalations().count == 0
    assert watchdog_run() == []
