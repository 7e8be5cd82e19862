"""Signed acknowledge links: a GET only asks, a POST acknowledges as the link's user without
a log-in; expired, reused, unknown and no-longer-allowed links are refused with a page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.incidents.choices import ACKNOWLEDGE_AUDIT_ACTION, EventKind, IncidentStatus
from apps.incidents.models import IncidentEvent
from apps.oncall.choices import ACK_LINK_HOURS
from apps.oncall.links import ack_link_create, ack_link_url
from apps.oncall.models import AckLink
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(company_a):
    return IncidentFactory(company=company_a, severity="critical")


@pytest.fixture
def anonymous():
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def scanner():
    """A client that skips CSRF, to reach the link checks behind it."""
    return Client()


def path_of(token: str) -> str:
    return f"/oncall/ack/{token}/"


def confirm(client: Client, token: str):
    """What a person does: open the link, press the button (with the page's CSRF token)."""
    page = client.get(path_of(token))
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    return client.post(path_of(token), {"csrfmiddlewaretoken": csrf.group(1)})


def test_the_link_is_absolute_and_only_its_hash_is_stored(settings, incident, technician_a):
    settings.SITE_URL = "https://aw.example.net"
    url = ack_link_url(incident=incident, user=technician_a)
    token = url.rsplit("/", 2)[-2]
    assert url == f"https://aw.example.net/oncall/ack/{token}/"
    link = AckLink.objects.get()
    assert token not in link.token_hash and len(token) >= 43
    assert link.expires_at - link.created_at == pytest.approx(
        timedelta(hours=ACK_LINK_HOURS), abs=timedelta(seconds=5)
    )


def test_opening_the_link_asks_and_acknowledges_nothing(anonymous, incident, technician_a):
    """Mail scanners fetch every link: a GET must change nothing."""
    token = ack_link_create(incident=incident, user=technician_a)
    response = anonymous.get(path_of(token))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Acknowledge incident #{incident.pk}?" in body
    assert "tech@acme.example" in body
    assert "no-cache" in response["Cache-Control"]
    incident.refresh_from_db()
    assert incident.acknowledged_at is None
    assert AckLink.objects.get().used_at is None


def test_pressing_the_button_acknowledges_as_the_user_without_logging_in(
    anonymous, incident, technician_a
):
    token = ack_link_create(incident=incident, user=technician_a)
    response = confirm(anonymous, token)
    assert response.status_code == 200
    assert "Acknowledged" in response.content.decode()
    incident.refresh_from_db()
    assert incident.acknowledged_by == technician_a
    assert incident.status == IncidentStatus.IN_PROGRESS
    assert "_auth_user_id" not in anonymous.session  # acting through the link is no log-in
    audit = AuditLog.objects.get(action=ACKNOWLEDGE_AUDIT_ACTION)
    assert audit.actor == technician_a
    assert audit.details == {
        "via": "link",
        "text": "acknowledged via link as tech@acme.example",
    }
    event = IncidentEvent.objects.get(incident=incident, kind=EventKind.ACKNOWLEDGED)
    assert event.text == "Acknowledged via link as tech@acme.example"


def test_a_post_without_the_pages_csrf_token_is_refused(anonymous, incident, technician_a):
    token = ack_link_create(incident=incident, user=technician_a)
    assert anonymous.post(path_of(token)).status_code == 403
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_a_used_link_is_refused(anonymous, scanner, incident, technician_a):
    token = ack_link_create(incident=incident, user=technician_a)
    assert confirm(anonymous, token).status_code == 200
    incident.refresh_from_db()
    incident_acknowledged_at = incident.acknowledged_at
    for response in (anonymous.get(path_of(token)), scanner.post(path_of(token))):
        assert response.status_code == 410
        assert "has been used already" in response.content.decode()
    incident.refresh_from_db()
    assert incident.acknowledged_at == incident_acknowledged_at


def test_an_expired_link_is_refused(anonymous, incident, technician_a):
    token = ack_link_create(
        incident=incident,
        user=technician_a,
        now=timezone.now() - timedelta(hours=ACK_LINK_HOURS, seconds=1),
    )
    response = anonymous.get(path_of(token))
    assert response.status_code == 410
    assert f"expired (links work for {ACK_LINK_HOURS} hours)" in response.content.decode()
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_an_unknown_link_is_a_404(anonymous):
    response = anonymous.get(path_of("not-a-real-token"))
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_a_user_removed_from_the_company_can_no_longer_use_their_link(
    anonymous, incident, technician_a, company_b
):
    token = ack_link_create(incident=incident, user=technician_a)
    technician_a.memberships.update(company=company_b)  # moved to Globex since the page
    response = anonymous.get(path_of(token))
    assert response.status_code == 403
    assert "may no longer change incidents of this company" in response.content.decode()


def test_a_globex_users_link_to_an_acme_incident_is_refused(scanner, incident, technician_b):
    token = ack_link_create(incident=incident, user=technician_b)
    response = scanner.post(path_of(token))
    assert response.status_code == 403
    assert "tech@globex.example may no longer change" in response.content.decode()
    incident.refresh_from_db()
    assert incident.acknowledged_at is None
    assert AckLink.objects.get().used_at is None


def test_a_deactivated_users_link_is_refused(anonymous, incident, technician_a):
    token = ack_link_create(incident=incident, user=technician_a)
    technician_a.is_active = False
    technician_a.save()
    assert anonymous.get(path_of(token)).status_code == 403


def test_a_link_to_an_incident_already_acknowledged_says_by_whom_and_stays_unused(
    anonymous, incident, technician_a, company_admin_a
):
    first = ack_link_create(incident=incident, user=company_admin_a)
    second = ack_link_create(incident=incident, user=technician_a)
    assert confirm(anonymous, first).status_code == 200
    response = anonymous.get(path_of(second))
    assert response.status_code == 409
    assert f"already acknowledged by {company_admin_a}" in response.content.decode()
    assert AckLink.objects.get(user=technician_a).used_at is None
