"""Acknowledge in a real browser: an alert opens an incident that escalates to the on-call
technician; the technician acknowledges it on the incident page and a company admin's open
page updates live; a second incident is acknowledged from a signed link by someone not
logged in, and the technician's open page updates live. Escalation stops for both."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.incidents.models import Incident
from apps.oncall.escalation import escalations_sweep
from apps.oncall.links import ack_link_create
from apps.oncall.models import EscalationPage, IncidentEscalation
from apps.tenants.models import Asset
from apps.tenants.services import api_key_regenerate
from tests.browser import expect_live, login, post_alert, screenshot


@pytest.fixture
def acme_key(company_a):
    Asset.objects.create(company=company_a, name="srv-db-01", is_critical=True)
    return api_key_regenerate(company=company_a)


def escalated_incident(server, acme_key, signature: str) -> Incident:
    """Post a critical alert; wait for the worker to open, assign and page the incident."""
    status, answer = post_alert(
        server.url, acme_key, signature=signature, severity="critical", message="Down"
    )
    assert status == 202, answer
    for _ in range(200):
        page = EscalationPage.objects.filter(incident__signature=signature).first()
        if page is not None:
            return page.incident
        time.sleep(0.1)
    raise AssertionError(f"no escalation page for {signature}")


def test_acknowledging_on_the_page_and_from_a_link_stops_escalation_and_updates_live(
    server, new_page, acme_key, technician_a, company_admin_a
):
    first = escalated_incident(server, acme_key, "db_down")
    assert first.assigned_to == technician_a

    tech = new_page()
    login(tech, technician_a)
    tech.goto(f"/incidents/{first.pk}/")
    expect_live(tech)
    expect(tech.locator("#timeline")).to_contain_text(f"Escalated to step 1: paged {technician_a}")
    admin = new_page()
    login(admin, company_admin_a)
    admin.goto(f"/incidents/{first.pk}/")
    expect_live(admin)
    expect(admin.locator("[data-testid=ack-badge]")).to_have_count(0)

    tech.get_by_test_id("acknowledge").click()
    expect(tech.locator("#incident-actions")).to_contain_text(f"Acknowledged by {technician_a}")
    # The admin's page was not reloaded: the live signal refreshed its regions.
    expect(admin.locator("[data-testid=ack-badge]")).to_be_visible()
    expect(admin.locator("#incident-header")).to_contain_text("In progress")
    expect(admin.locator("#incident-header")).to_contain_text(f"by {technician_a}")
    screenshot(admin, "incident-acknowledged-live")

    second = escalated_incident(server, acme_key, "web_down")
    tech.goto(f"/incidents/{second.pk}/")
    expect_live(tech)
    token = ack_link_create(incident=second, user=company_admin_a)
    outsider = new_page()  # a phone's mail app: not logged in
    outsider.goto(f"/oncall/ack/{token}/")
    expect(outsider.locator("h1")).to_contain_text(f"Acknowledge incident #{second.pk}?")
    outsider.get_by_test_id("ack-confirm").click()
    expect(outsider.locator("h1")).to_have_text("Acknowledged")
    expect(tech.locator("[data-testid=ack-badge]")).to_be_visible()
    expect(tech.locator("#incident-header")).to_contain_text(f"by {company_admin_a}")
    outsider.goto(f"/oncall/ack/{token}/")
    expect(outsider.get_by_role("alert")).to_contain_text("has been used already")

    later = timezone.now() + timedelta(hours=2)
    escalations_sweep(now=later)
    for incident in (first, second):
        assert EscalationPage.objects.filter(incident=incident).count() == 1
        assert IncidentEscalation.objects.get(incident=incident).stop_reason == "acknowledged"
