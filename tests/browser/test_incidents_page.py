"""The Incidents page in a real browser: a live update keeps page 2 and the filters,
search finds a host and goes into the address bar, and a bulk resolve clears a storm."""

import re

import pytest
from playwright.sync_api import expect

from apps.incidents.models import Incident, IncidentEvent
from apps.tenants.services import api_key_regenerate
from tests.browser import login, post_alert
from tests.incidents.factories import IncidentFactory


@pytest.fixture
def storm(company_a):
    """30 incidents of a storm, oldest first (so sorted by number, newest first)."""
    return [
        IncidentFactory(
            company=company_a,
            asset_name=f"srv-storm-{n:02d}",
            signature="cpu_high",
            title=f"cpu_high on srv-storm-{n:02d}",
        )
        for n in range(30)
    ]


def test_a_live_update_keeps_page_two_and_the_filters(server, page, company_a, technician_a, storm):
    key = api_key_regenerate(company=company_a)
    login(page, technician_a)
    page.goto("/incidents/?q=storm&sort=number&page=2")
    results = page.locator("#incident-results tr[data-incident]")
    expect(results).to_have_count(5)
    expect(results.first).to_contain_text("srv-storm-04")

    status, answer = post_alert(server.url, key, asset_name="srv-storm-99", signature="cpu_high")
    assert status == 202, answer

    # The new incident is first on page 1, so page 2 now starts one earlier; still page 2,
    # still the search and the sort.
    expect(results).to_have_count(6)
    expect(results.first).to_contain_text("srv-storm-05")
    expect(page.locator("#incident-results .pager")).to_contain_text("Page 2")
    expect(page).to_have_url(re.compile(r"/incidents/\?q=storm&sort=number&page=2$"))
    expect(page.locator("#incident-q")).to_have_value("storm")


def test_search_by_host_then_bulk_resolve(server, page, company_a, technician_a):
    db = [
        IncidentFactory(company=company_a, asset_name="srv-db-01", signature=signature)
        for signature in ("disk_full", "replication_lag")
    ]
    web = IncidentFactory(company=company_a, asset_name="srv-web-02", signature="http_5xx")
    login(page, technician_a)
    page.get_by_role("link", name="Incidents", exact=True).click()
    rows = page.locator("#incident-results tr[data-incident]")
    expect(rows).to_have_count(3)

    page.keyboard.press("/")
    expect(page.locator("#incident-q")).to_be_focused()
    page.keyboard.type("srv-db-01")
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(r"/incidents/\?q=srv-db-01$"))

    for checkbox in page.locator("#incident-results input[name=ids]").all():
        checkbox.check()
    page.select_option("#bulk-action", "resolve")
    page.fill("#bulk-note", "Failed over to the replica")
    page.click("#bulk-apply")

    expect(page.locator(".messages")).to_contain_text("2 resolved")
    expect(page).to_have_url(re.compile(r"/incidents/\?q=srv-db-01$"))
    expect(page.locator("#incident-results")).to_contain_text("No incidents match")
    assert set(
        Incident.objects.filter(pk__in=[i.pk for i in db]).values_list("status", flat=True)
    ) == {"resolved"}
    assert IncidentEvent.objects.filter(text="Failed over to the replica").count() == 2
    web.refresh_from_db()
    assert web.status == "new"


def test_keyboard_take_and_help(server, page, company_a, technician_a):
    first, second = (
        IncidentFactory(company=company_a, asset_name=f"srv-key-0{n}", priority_score=90 - n)
        for n in range(2)
    )
    login(page, technician_a)
    page.goto("/incidents/")
    page.keyboard.press("?")
    expect(page.locator("#shortcut-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcut-help")).to_be_hidden()

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(page.locator(".messages")).to_contain_text(f"1 taken by you: #{second.pk}.")
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.assigned_to == technician_a and first.assigned_to is None
