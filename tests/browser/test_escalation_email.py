"""Issue 11's browser test, with the product as it runs (daphne, a Celery worker, a real
SMTP server): a critical alert opens an incident that pages the on-call technician by
email; nobody acknowledges, so escalation reaches the company admin; the Acknowledge link
taken from the technician's received email is opened in a browser that is not logged in
and confirmed; escalation stops and the technician's open incident page turns
"Acknowledged" live."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from playwright.sync_api import expect

from apps.notifications.models import ChannelKind
from apps.oncall.escalation import escalations_sweep
from apps.oncall.models import EscalationPage, IncidentEscalation
from apps.tenants.models import Asset
from apps.tenants.services import api_key_regenerate
from tests.browser import expect_live, login, post_alert, screenshot
from tests.notifications.helpers import add_channel
from tests.notifications.servers import start_smtp
from tests.oncall.factories import rotation, schedule_of


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    server = start_smtp(tmp_path_factory.mktemp("mail"))
    yield server
    server.controller.stop()


@pytest.fixture
def process_env(smtp):
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "SITE_URL": "https://aw.example.test",
    }


def wait_for(check, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def mails_to(smtp, user) -> list:
    return [mail for mail in smtp.mails() if user.email in mail.to]


def sweep_in_a_thread(now) -> None:
    """Escalation time-travelled to ``now``. In a thread of its own: this one runs
    Playwright's event loop, where the bell's push (async_to_sync) cannot run; the
    messages go out through the real worker."""

    def run():
        escalations_sweep(now=now)
        connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_the_emailed_ack_link_stops_escalation_and_the_page_updates_live(
    server, smtp, new_page, company_a, technician_a, company_admin_a
):
    Asset.objects.create(company=company_a, name="srv-db-01", is_critical=True)
    key = api_key_regenerate(company=company_a)
    rotation(schedule_of(company_a), [technician_a])
    add_channel(technician_a, ChannelKind.EMAIL, technician_a.email)
    add_channel(company_admin_a, ChannelKind.EMAIL, company_admin_a.email)

    status, answer = post_alert(
        server.url, key, signature="db_down_night", severity="critical", message="Down"
    )
    assert status == 202, answer
    (mail,) = wait_for(lambda: mails_to(smtp, technician_a))
    link = next(link for link in mail.links if "/oncall/ack/" in link)
    incident = EscalationPage.objects.get(incident__signature="db_down_night").incident
    assert incident.assigned_to == technician_a
    assert mail.subject == f"New incident: {incident.title}"

    tech = new_page()
    login(tech, technician_a)
    tech.goto(f"/incidents/{incident.pk}/")
    expect_live(tech)
    expect(tech.locator("[data-testid=ack-badge]")).to_have_count(0)
    expect(tech.locator("#deliveries-card")).to_contain_text("Email to")

    # Nobody acknowledges: 15 minutes on, the company admin is paged by email.
    escalation = IncidentEscalation.objects.get(incident=incident)
    admin_before = len(mails_to(smtp, company_admin_a))
    sweep_in_a_thread(escalation.next_step_at)
    paged = wait_for(lambda: mails_to(smtp, company_admin_a)[admin_before:])
    assert any("Unacknowledged" in m.subject for m in paged)

    # The link from the technician's email, opened on a phone that is not logged in (the
    # link's host is SITE_URL; the path is what the server answers).
    phone = new_page()
    phone.goto(urlsplit(link).path)
    expect(phone.locator("h1")).to_contain_text(f"Acknowledge incident #{incident.pk}?")
    phone.get_by_test_id("ack-confirm").click()
    expect(phone.locator("h1")).to_have_text("Acknowledged")

    # The technician's page, not reloaded, follows.
    expect(tech.locator("[data-testid=ack-badge]")).to_be_visible()
    expect(tech.locator("#incident-header")).to_contain_text(f"by {technician_a}")
    screenshot(tech, "incident-acknowledged-from-email")

    # Escalation stops: the MSP admins' step and later sweeps page nobody.
    sent = len(smtp.mails())
    sweep_in_a_thread(escalation.started_at + timedelta(hours=2))
    time.sleep(1)
    assert len(smtp.mails()) == sent
    assert EscalationPage.objects.filter(incident=incident).count() == 2
    assert IncidentEscalation.objects.get(incident=incident).stop_reason == "acknowledged"


@pytest.mark.parametrize("role", ["technician", "company_admin"])
def test_on_call_is_one_click_away_in_a_one_row_navigation(
    server, page, role, technician_a, company_admin_a, company_a
):
    user = technician_a if role == "technician" else company_admin_a
    rotation(schedule_of(company_a), [technician_a])
    page.set_viewport_size({"width": 1440, "height": 900})
    login(page, user)
    links = page.locator(".topnav a")
    tops = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}
    assert len(tops) == 1
    last = links.nth(links.count() - 1).bounding_box()
    assert last["x"] + last["width"] <= page.locator(".topright").bounding_box()["x"]
    page.locator(".topnav").get_by_role("link", name="On call").click()
    # A single company: its on-call page, saying who is on call now.
    expect(page).to_have_url(f"{server.url}/oncall/{company_a.slug}/")
    expect(page.locator("main")).to_contain_text(str(technician_a))
    expect(page.locator(".topnav a.active")).to_have_text("On call")
