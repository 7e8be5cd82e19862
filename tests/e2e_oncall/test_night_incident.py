"""Issue 11 end to end, as a user meets it at 3 a.m.: a monitoring tool posts a critical
alert; correlation opens an incident; it is assigned to whoever the schedule puts on call,
who gets ONE email and ONE Slack message with an Acknowledge link; nobody acknowledges, so
escalation (time-travelled through ``now``) pages the company admin by email; the link from
the received email acknowledges it and escalation stops. Against a real SMTP server and a
real HTTP receiver standing in for Slack."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.roles import Role
from apps.audit.models import AuditLog
from apps.incidents.choices import ACKNOWLEDGE_AUDIT_ACTION, EventKind
from apps.incidents.models import Incident, IncidentEvent
from apps.notifications.delivery import flush_digests
from apps.notifications.models import ChannelKind
from apps.notifications.tasks import send_delivery
from apps.oncall.choices import StopReason
from apps.oncall.escalation import escalations_sweep
from apps.oncall.models import EscalationPage, IncidentEscalation
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.factories import CompanyFactory, UserFactory
from tests.notifications.helpers import add_channel
from tests.oncall.factories import rotation, schedule_of

pytestmark = pytest.mark.django_db(transaction=False)

WEBHOOK = "/api/webhooks/alerts"


def alert(signature: str = "disk-full") -> dict:
    return {
        "asset_name": "db-01",
        "signature": signature,
        "severity": "critical",
        "message": f"{signature} on db-01",
        "tool_source": "Prometheus",
    }


def mails_to(smtp, user) -> list:
    return [mail for mail in smtp.mails() if user.email in mail.to]


def ack_link_in(mail) -> str:
    links = [link for link in mail.links if "/oncall/ack/" in link]
    assert len(links) == 1, mail.text
    return links[0]


@pytest.fixture
def acme(db):
    company, key = company_create(company=Company(name="Acme Corp", slug="acme"))
    return company, key


@pytest.fixture
def night(acme, smtp, receiver):
    """Acme with a schedule putting the technician on call, channels for everyone."""
    company, key = acme
    tech = UserFactory(email="oncall@acme.example", role=Role.TECHNICIAN, companies=[company])
    admin = UserFactory(email="admin@acme.example", role=Role.COMPANY_ADMIN, companies=[company])
    msp = UserFactory(email="msp@example.com", role=Role.MSP_ADMIN)
    rotation(schedule_of(company), [tech])
    slack = receiver("/slack/T000/B000/XXXX")
    add_channel(tech, ChannelKind.EMAIL, tech.email, name="My email")
    add_channel(tech, ChannelKind.SLACK, slack.url, name="My Slack")
    add_channel(admin, ChannelKind.EMAIL, admin.email, name="Admin email")
    add_channel(msp, ChannelKind.EMAIL, msp.email, name="MSP email")
    return {
        "company": company,
        "key": key,
        "tech": tech,
        "admin": admin,
        "msp": msp,
        "slack": slack,
    }


def post_alert(night, payload, capture, *, path: str = WEBHOOK) -> None:
    with capture(execute=True):
        response = Client().post(
            path, payload, content_type="application/json", headers={"X-API-Key": night["key"]}
        )
    assert response.status_code == 202, response.content


def test_a_night_incident_reaches_on_call_escalates_and_stops_when_acknowledged_by_email(
    night, smtp, django_capture_on_commit_callbacks
):
    tech, admin, msp, slack = night["tech"], night["admin"], night["msp"], night["slack"]
    capture = django_capture_on_commit_callbacks

    post_alert(night, alert(), capture)

    incident = Incident.objects.get(company=night["company"])
    assert incident.assigned_to == tech
    # The on-call technician: exactly one email and one Slack message, both with the same
    # Acknowledge link (the assignment itself reaches the bell only).
    tech_mails = mails_to(smtp, tech)
    assert len(tech_mails) == 1, [m.subject for m in tech_mails]
    assert tech_mails[0].subject == f"New incident: {incident.title}"
    assert "you are paged first" in tech_mails[0].text
    link = ack_link_in(tech_mails[0])
    assert link.startswith("https://aw.example.test/oncall/ack/")
    assert len(slack.requests) == 1
    buttons = slack.requests[0].json()["blocks"][-1]["elements"]
    assert {"Acknowledge": link}.items() <= {b["text"]["text"]: b["url"] for b in buttons}.items()
    # The company admin and the MSP admin hear of the new critical incident (no link yet).
    assert [m.subject for m in mails_to(smtp, admin)] == [f"Critical: {incident.title}"]
    assert len(mails_to(smtp, msp)) == 1

    # Nobody acknowledges: 15 minutes on, step 2 pages the company admin by email, in the
    # thread of the first message, with an Acknowledge link of their own.
    escalation = IncidentEscalation.objects.get(incident=incident)
    start, step_2 = escalation.started_at, escalation.next_step_at
    assert timedelta(minutes=15) <= step_2 - start < timedelta(minutes=15, seconds=10)
    with capture(execute=True):
        escalations_sweep(now=step_2 - timedelta(seconds=1))
    assert len(smtp.mails()) == 3
    with capture(execute=True):
        escalations_sweep(now=step_2)
    admin_mails = mails_to(smtp, admin)
    assert [m.subject for m in admin_mails] == [
        f"Critical: {incident.title}",
        f"Re: Unacknowledged: {incident.title}",
    ]
    assert ack_link_in(admin_mails[1]) != link
    assert len(mails_to(smtp, tech)) == 1

    # The technician follows the link from the received email, without being logged in:
    # the GET only shows what it does, the POST acknowledges as the technician.
    path = urlsplit(link).path
    browser = Client(enforce_csrf_checks=True)
    confirm = browser.get(path)
    assert confirm.status_code == 200
    assert Incident.objects.get(pk=incident.pk).acknowledged_at is None
    token = confirm.cookies["csrftoken"].value
    with capture(execute=True):
        done = browser.post(path, {"csrfmiddlewaretoken": token})
    assert done.status_code == 200, done.content

    incident.refresh_from_db()
    assert incident.acknowledged_by == tech
    assert incident.status == "in_progress"
    event = IncidentEvent.objects.get(incident=incident, kind=EventKind.ACKNOWLEDGED)
    assert event.text == f"Acknowledged via link as {tech.email}"
    audit = AuditLog.objects.get(action=ACKNOWLEDGE_AUDIT_ACTION, target_id=str(incident.pk))
    assert (audit.actor_id, audit.details["via"]) == (tech.pk, "link")

    # Escalation stops: the MSP admins' step (30 min) and any later sweep page nobody.
    sent = len(smtp.mails())
    for minutes in (30, 45, 120):
        with capture(execute=True):
            escalations_sweep(now=start + timedelta(minutes=minutes))
    assert len(smtp.mails()) == sent
    assert len(mails_to(smtp, msp)) == 1
    assert len(slack.requests) == 1
    escalation = IncidentEscalation.objects.get(incident=incident)
    assert escalation.stop_reason == StopReason.ACKNOWLEDGED
    assert EscalationPage.objects.filter(incident=incident).count() == 2

    # The link works once.
    assert browser.post(path, {"csrfmiddlewaretoken": token}).status_code == 410

    # Every role that sees the incident reads its "Messages sent" card; another company's
    # technician gets a 404, not the card.
    globex = UserFactory(role=Role.TECHNICIAN, companies=[CompanyFactory(slug="globex")])
    for user in (tech, admin, msp):
        viewer = Client()
        viewer.force_login(user)
        body = viewer.get(f"/incidents/{incident.pk}/").content.decode()
        assert 'id="deliveries-card"' in body
        assert body.count(f"for {tech.email}") == 2  # the email and the Slack message
        assert body.count(f"for {admin.email}") == 2  # "Critical" and step 2's page
        assert body.count(f"for {msp.email}") == 1
    outsider = Client()
    outsider.force_login(globex)
    answer = outsider.get(f"/incidents/{incident.pk}/")
    assert answer.status_code == 404
    assert b"deliveries-card" not in answer.content


def test_a_storm_reaches_the_on_call_technician_as_capped_emails_and_one_digest(
    night, smtp, settings, django_capture_on_commit_callbacks
):
    """150 critical incidents of one company in one sweep: the on-call technician's inbox
    gets at most the rate cap of emails, then one digest once the window has passed."""
    tech = night["tech"]
    started = timezone.now().isoformat()
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "alert-whisperer",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"Down{n}", "instance": f"srv-{n}", "severity": "critical"},
                "annotations": {"summary": f"srv-{n} is down"},
                "startsAt": started,
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{n:016x}",
            }
            for n in range(150)
        ],
    }
    post_alert(night, body, django_capture_on_commit_callbacks, path=f"{WEBHOOK}/alertmanager")
    assert Incident.objects.filter(company=night["company"]).count() == 150

    capped = mails_to(smtp, tech)
    assert len(capped) == settings.NOTIFY_RATE_LIMIT
    assert all(ack_link_in(mail) for mail in capped)

    later = timezone.now() + timedelta(seconds=settings.NOTIFY_RATE_WINDOW + 1)
    with django_capture_on_commit_callbacks(execute=True):
        for digest_id in flush_digests(now=later):
            send_delivery.delay(digest_id)
    mails = mails_to(smtp, tech)
    assert len(mails) == settings.NOTIFY_RATE_LIMIT + 1
    digest = mails[-1]
    assert f"{150 - settings.NOTIFY_RATE_LIMIT} more" in digest.subject + digest.text
