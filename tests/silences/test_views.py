"""Silences and snoozes: created, listed with the alerts they held, ended; shown on the
alert and incident lists; scoped by company and role; audited; and holding back critical
notifications without losing a single alert."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.incidents.models import IncidentEvent
from apps.incidents.services import incidents_announce
from apps.notifications.models import Notification
from apps.silences.models import Silence, Snooze
from tests.factories import UserFactory
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db

LIST = "/silences/"
NEW = "/silences/new/"


def silence(company, **fields):
    now = timezone.now()
    return Silence.objects.create(
        company=company,
        reason=fields.pop("reason", "Disk replacement tonight"),
        starts_at=fields.pop("starts_at", now - timedelta(minutes=5)),
        ends_at=fields.pop("ends_at", now + timedelta(hours=1)),
        **fields,
    )


def test_a_technician_creates_a_silence_that_is_audited_and_listed(client, technician_a, company_a):
    client.force_login(technician_a)
    response = client.post(
        NEW,
        {
            "company": company_a.pk,
            "asset_name": "srv-db-01",
            "signature": "",
            "labels": "env=prod, team = storage",
            "duration": "4h",
            "reason": "Disk replacement tonight",
        },
    )
    assert response.status_code == 302
    created = Silence.objects.get()
    assert created.labels == {"env": "prod", "team": "storage"}
    assert timedelta(hours=3, minutes=59) < created.ends_at - timezone.now() <= timedelta(hours=4)
    log = AuditLog.objects.get(action="silence_created")
    assert log.actor == technician_a and log.company == company_a
    body = client.get(LIST).content.decode()
    assert "host=srv-db-01, env=prod, team=storage" in body
    assert "Disk replacement tonight" in body


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"asset_name": "", "signature": "", "labels": ""}, "a silence of everything"),
        ({"reason": ""}, "This field is required."),
        ({"labels": "env"}, "Write labels as key=value"),
        ({"duration": "forever"}, "Select a valid choice"),
    ],
)
def test_an_invalid_silence_is_refused_in_place(client, technician_a, company_a, fields, error):
    client.force_login(technician_a)
    data = {
        "company": company_a.pk,
        "asset_name": "srv-db-01",
        "duration": "1h",
        "reason": "why",
        **fields,
    }
    response = client.post(NEW, data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Silence.objects.exists()


def test_silences_are_scoped_to_the_viewers_companies(
    client, technician_a, technician_b, company_a, company_b
):
    theirs = silence(company_b, signature="cpu_high", reason="globex work")
    client.force_login(technician_a)
    assert "globex work" not in client.get(LIST).content.decode()
    response = client.post(
        NEW, {"company": company_b.pk, "signature": "x", "duration": "1h", "reason": "r"}
    )
    assert response.status_code == 400 and Silence.objects.count() == 1
    assert client.post(f"{LIST}{theirs.pk}/expire/").status_code == 404
    client.force_login(technician_b)
    assert "globex work" in client.get(LIST).content.decode()


def test_a_user_without_a_role_cannot_silence(client, company_a):
    nobody = UserFactory(companies=[company_a])
    mine = silence(company_a, signature="cpu_high")
    client.force_login(nobody)
    client.post(NEW, {"company": company_a.pk, "signature": "x", "duration": "1h", "reason": "r"})
    assert Silence.objects.count() == 1
    client.post(f"{LIST}{mine.pk}/expire/")
    mine.refresh_from_db()
    assert mine.expired_at is None


def test_an_old_active_silence_is_listed_behind_many_newer_ended_ones(
    client, technician_a, company_a
):
    now = timezone.now()
    long_running = silence(company_a, signature="disk_full", starts_at=now - timedelta(days=9))
    ended = timedelta(days=8)
    Silence.objects.bulk_create(
        Silence(
            company=company_a,
            signature=f"old-{n}",
            reason="past work",
            starts_at=now - ended + timedelta(minutes=n),
            ends_at=now - ended + timedelta(minutes=n + 1),
        )
        for n in range(120)
    )
    client.force_login(technician_a)
    page = client.get(reverse("silences:list")).content.decode()
    active, ended_part = page.split('id="past-title"')
    assert "disk_full" in active and "old-119" in ended_part and "old-0<" not in page
    assert "The 100 most recent." in ended_part
    assert long_running.is_active()


def test_ending_a_silence_early(client, technician_a, company_a):
    mine = silence(company_a, signature="cpu_high")
    client.force_login(technician_a)
    assert client.get(f"{LIST}{mine.pk}/expire/").status_code == 405
    client.post(f"{LIST}{mine.pk}/expire/")
    mine.refresh_from_db()
    assert mine.expired_at is not None
    assert AuditLog.objects.filter(action="silence_expired").count() == 1


def test_silenced_alerts_are_stored_counted_and_marked(client, technician_a, company_a):
    rule = silence(company_a, asset_name="SRV-DB-01", labels={"env": "prod"})
    incident = IncidentFactory(company=company_a, asset_name="srv-db-01", signature="disk_full")
    held = [
        AlertFactory(incident=incident, signature="disk_full", message=f"held {n}")
        for n in range(3)
    ]
    AlertFactory(incident=incident, signature="disk_full", labels={"env": "dev"}, message="dev")
    AlertFactory(company=company_a, asset_name="srv-web-02", message="other host")
    before = AlertFactory(incident=incident, signature="disk_full", message="before")
    before.received_at = rule.starts_at - timedelta(minutes=1)
    before.save()

    client.force_login(technician_a)
    listed = client.get(LIST).content.decode()
    assert '<td class="num">3</td>' in listed  # the three held alerts, and no other
    alerts = client.get(reverse("dashboard:alerts")).content.decode()
    assert alerts.count(">silenced</span>") == 4  # the held three and the earlier one
    incidents = client.get("/incidents/").content.decode()
    assert ">silenced</span>" in incidents
    assert all(a.pk for a in held)


def test_an_expired_silence_marks_nothing(client, technician_a, company_a):
    now = timezone.now()
    silence(
        company_a,
        signature="HighCPU",
        starts_at=now - timedelta(hours=2),
        ends_at=now - timedelta(hours=1),
    )
    AlertFactory(incident=IncidentFactory(company=company_a))
    client.force_login(technician_a)
    assert ">silenced</span>" not in client.get(reverse("dashboard:alerts")).content.decode()


def test_snooze_and_wake_an_incident(client, technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    client.force_login(technician_a)
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Snooze for" in page
    response = client.post(
        f"/silences/snooze/{incident.pk}/", {"duration": "1h", "reason": "vendor call at 3"}
    )
    assert response["Location"] == f"/incidents/{incident.pk}/"
    snooze = Snooze.objects.get(incident=incident)
    assert snooze.reason == "vendor call at 3"
    assert IncidentEvent.objects.filter(incident=incident, text__startswith="Snoozed until")
    assert AuditLog.objects.filter(action="incident_snoozed").exists()
    # Out of the way on the Incidents page; shown, marked, on request and on the dashboard.
    assert f'data-incident="{incident.pk}"' not in client.get("/incidents/").content.decode()
    for url in ("/incidents/?snoozed=show", "/incidents/?snoozed=only", "/dashboard/incidents/"):
        assert "snoozed until" in client.get(url).content.decode()
    assert "Wake it now" in client.get(f"/incidents/{incident.pk}/").content.decode()

    client.post(f"/silences/wake/{incident.pk}/")
    snooze.refresh_from_db()
    assert snooze.ended_at is not None
    assert f'data-incident="{incident.pk}"' in client.get("/incidents/").content.decode()
    assert "snoozed until" not in client.get("/incidents/?snoozed=show").content.decode()


def test_snoozing_is_for_people_who_may_update_the_incident(
    client, technician_b, company_a, company_admin_a
):
    incident = IncidentFactory(company=company_a)
    client.force_login(technician_b)
    assert client.post(f"/silences/snooze/{incident.pk}/", {"duration": "1h"}).status_code == 404
    client.force_login(UserFactory(companies=[company_a]))
    assert client.post(f"/silences/snooze/{incident.pk}/", {"duration": "1h"}).status_code in (
        403,
        404,
    )
    assert not Snooze.objects.exists()


def test_waking_is_scoped_like_snoozing(client, technician_a, technician_b, company_a):
    incident = IncidentFactory(company=company_a)
    client.force_login(technician_a)
    client.post(f"/silences/snooze/{incident.pk}/", {"duration": "1h"})
    client.force_login(technician_b)
    assert client.post(f"/silences/wake/{incident.pk}/").status_code == 404
    client.force_login(UserFactory(companies=[company_a]))
    assert client.post(f"/silences/wake/{incident.pk}/").status_code == 404
    assert Snooze.objects.get(incident=incident).ended_at is None


def test_a_resolved_incident_is_not_snoozed(client, technician_a, company_a):
    incident = IncidentFactory(company=company_a, status="resolved")
    client.force_login(technician_a)
    response = client.post(f"/silences/snooze/{incident.pk}/", {"duration": "1h"}, follow=True)
    assert "needs no snooze" in response.content.decode()
    assert not Snooze.objects.exists()


def test_critical_notifications_of_quiet_incidents_are_held_back(
    msp_admin, technician_a, company_a
):
    snoozed = IncidentFactory(company=company_a, severity="critical")
    Snooze.objects.create(incident=snoozed, until=timezone.now() + timedelta(hours=1))
    silenced = IncidentFactory(company=company_a, severity="critical", signature="disk_full")
    silence(company_a, signature="disk_full")
    loud = IncidentFactory(company=company_a, severity="critical")
    incidents_announce(incident_ids=[snoozed.pk, silenced.pk, loud.pk])
    urls = set(Notification.objects.values_list("url", flat=True))
    assert urls == {f"/incidents/{loud.pk}/"}


def test_the_incident_page_marks_silenced_alerts_in_fixed_queries(
    client, technician_a, company_a, django_assert_max_num_queries
):
    incident = IncidentFactory(company=company_a, asset_name="srv-db-01")
    for _ in range(25):
        AlertFactory(incident=incident)
    silence(company_a, asset_name="srv-db-01", labels={"env": "prod"})
    client.force_login(technician_a)
    with django_assert_max_num_queries(8):
        body = client.get(f"/incidents/{incident.pk}/alerts/").content.decode()
    assert body.count(">silenced</span>") == 25
