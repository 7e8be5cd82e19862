"""Silenced or snoozed incidents are not given out as new work: correlation makes them
visible, but nobody is assigned or told "Assigned to you"; the others are, as before."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.incidents.correlation import correlate_company
from apps.incidents.models import Incident
from apps.incidents.services import incident_auto_assign, incidents_auto_assign
from apps.notifications.models import Notification
from apps.oncall.models import IncidentEscalation
from apps.silences.models import Silence, Snooze
from apps.silences.services import (
    incident_wake,
    quiet_ended_assign,
    silence_create,
    silence_expire,
)
from tests.incidents.test_correlation import alert, ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_call(company_a, technician_a):
    technician_a.on_call = True
    technician_a.save()
    return technician_a


def test_a_silenced_incident_is_not_assigned(company_a, company_admin_a, on_call):
    silence_create(
        company=company_a,
        asset_name="srv-db-01",
        signature="",
        labels={},
        reason="Disk replacement",
        ends_at=timezone.now() + timedelta(hours=2),
        actor=company_admin_a,
    )
    ingest(
        company_a,
        alert(asset_name="srv-db-01", signature="disk_full", fingerprint="a"),
        alert(asset_name="srv-app-01", signature="http_5xx", fingerprint="b"),
    )
    visible = correlate_company(company_id=company_a.pk).became_visible
    incidents_auto_assign(incident_ids={company_a.pk: visible})

    silenced = Incident.objects.get(asset_name="srv-db-01")
    other = Incident.objects.get(asset_name="srv-app-01")
    assert silenced.assigned_to is None and silenced.visible
    assert other.assigned_to == on_call
    titles = list(
        Notification.objects.filter(user=on_call, kind="assignment").values_list("title", flat=True)
    )
    assert titles == [f"Assigned to you: {other.title}"]


def test_a_silence_by_label_is_checked_on_the_alerts(company_a, company_admin_a, on_call):
    silence_create(
        company=company_a,
        asset_name="",
        signature="",
        labels={"team": "dba"},
        reason="DBA on it",
        ends_at=timezone.now() + timedelta(hours=2),
        actor=company_admin_a,
    )
    ingest(
        company_a,
        alert(asset_name="srv-db-01", labels={"team": "dba"}, fingerprint="a"),
        alert(asset_name="srv-app-01", labels={"team": "web"}, fingerprint="b"),
    )
    visible = correlate_company(company_id=company_a.pk).became_visible
    incidents_auto_assign(incident_ids={company_a.pk: visible})
    assert Incident.objects.get(asset_name="srv-db-01").assigned_to is None
    assert Incident.objects.get(asset_name="srv-app-01").assigned_to == on_call


def test_a_snoozed_incident_is_not_assigned_until_woken(company_a, on_call):
    ingest(company_a, alert(fingerprint="a"))
    correlate_company(company_id=company_a.pk)
    incident = Incident.objects.get()
    snooze = Snooze.objects.create(incident=incident, until=timezone.now() + timedelta(hours=1))
    assert incident_auto_assign(incident_id=incident.pk) is None
    snooze.ended_at = timezone.now()
    snooze.save()
    assert incident_auto_assign(incident_id=incident.pk) == on_call


def test_an_expired_silence_no_longer_holds_assignment(company_a, company_admin_a, on_call):
    silence = silence_create(
        company=company_a,
        asset_name="srv-app-01",
        signature="",
        labels={},
        reason="Short",
        ends_at=timezone.now() + timedelta(hours=1),
        actor=company_admin_a,
    )
    ingest(company_a, alert(fingerprint="a"))
    correlate_company(company_id=company_a.pk)
    incident = Incident.objects.get()
    assert incident_auto_assign(incident_id=incident.pk) is None
    silence.expired_at = timezone.now()
    silence.save()
    assert incident_auto_assign(incident_id=incident.pk) == on_call


def _silenced_incident(company, admin, *, hours: float) -> tuple[Silence, Incident]:
    silence = silence_create(
        company=company,
        asset_name="srv-app-01",
        signature="",
        labels={},
        reason="Maintenance by the vendor",
        ends_at=timezone.now() + timedelta(hours=hours),
        actor=admin,
    )
    ingest(company, alert(fingerprint="a"))
    visible = correlate_company(company_id=company.pk).became_visible
    incidents_auto_assign(incident_ids={company.pk: visible})
    incident = Incident.objects.get()
    assert incident.assigned_to is None
    return silence, incident


def test_when_a_silence_runs_out_its_incidents_are_given_out(
    company_a, company_admin_a, on_call, django_capture_on_commit_callbacks
):
    """Nobody expires it: the beat task finds it ended and assigns what it held back, once."""
    silence, incident = _silenced_incident(company_a, company_admin_a, hours=1)
    assert quiet_ended_assign() == 0
    # An hour later (the silence moved back rather than the clock forward: the assignment
    # checks silences at the real time).
    Silence.objects.filter(pk=silence.pk).update(
        starts_at=timezone.now() - timedelta(hours=1, minutes=1),
        ends_at=timezone.now() - timedelta(minutes=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert quiet_ended_assign() == 1
    incident.refresh_from_db()
    assert incident.assigned_to == on_call
    assert IncidentEscalation.objects.get(incident=incident).step == 1  # paged at once
    assert quiet_ended_assign() == 0
    assert Notification.objects.filter(user=on_call, kind="assignment").count() == 1
    # Past the look-back, a silence's end is no longer news.
    assert quiet_ended_assign(now=timezone.now() + timedelta(minutes=10)) == 0


def test_expiring_a_silence_or_waking_a_snooze_gives_the_incident_out_at_once(
    company_a, company_admin_a, on_call, django_capture_on_commit_callbacks
):
    silence, incident = _silenced_incident(company_a, company_admin_a, hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        silence_expire(silence_id=silence.pk, actor=company_admin_a)
    incident.refresh_from_db()
    assert incident.assigned_to == on_call

    ingest(company_a, alert(asset_name="srv-db-01", signature="disk_full", fingerprint="b"))
    correlate_company(company_id=company_a.pk)
    snoozed = Incident.objects.get(asset_name="srv-db-01")
    Snooze.objects.create(incident=snoozed, until=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert incident_wake(incident_id=snoozed.pk, actor=company_admin_a) == 1
    snoozed.refresh_from_db()
    assert snoozed.assigned_to == on_call


def test_an_incident_still_silenced_by_another_silence_stays_unassigned(
    company_a, company_admin_a, on_call
):
    silence_create(
        company=company_a,
        asset_name="",
        signature="disk_full",
        labels={},
        reason="Every disk is being replaced",
        ends_at=timezone.now() + timedelta(hours=5),
        actor=company_admin_a,
    )
    silence, incident = _silenced_incident(company_a, company_admin_a, hours=1)
    silence_expire(silence_id=silence.pk, actor=company_admin_a)
    assert quiet_ended_assign() == 1
    incident.refresh_from_db()
    assert incident.assigned_to is None
