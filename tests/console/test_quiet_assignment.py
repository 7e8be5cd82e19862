"""Silenced or snoozed incidents are not given out as new work: correlation makes them
visible, but nobody is assigned or told "Assigned to you"; the others are, as before."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.incidents.correlation import correlate_company
from apps.incidents.models import Incident
from apps.incidents.services import incident_auto_assign, incidents_auto_assign
from apps.notifications.models import Notification
from apps.silences.models import Snooze
from apps.silences.services import silence_create
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
