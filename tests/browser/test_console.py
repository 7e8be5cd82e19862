"""The console in a real browser: an alert posted to the webhook appears on an open
dashboard without a reload, the incident is assigned, worked and resolved, and an MSP admin
creates a company and uses the API key its dialog shows."""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Membership
from apps.incidents.models import Incident
from apps.tenants.models import Asset, Company
from apps.tenants.services import api_key_regenerate
from tests.browser import expect_live, login, post_alert, screenshot
from tests.factories import CompanyFactory

API_KEY = re.compile(r"^aw_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def acme_key(company_a):
    """Acme's API key, with a critical database server in its inventory."""
    Asset.objects.create(
        company=company_a, name="srv-db-01", asset_type="database", is_critical=True
    )
    return api_key_regenerate(company=company_a)


def test_alert_appears_live_and_the_incident_is_worked_to_resolution(
    server, new_page, acme_key, technician_a, company_admin_a
):
    # Off call: the incident waits for someone to assign it.
    Membership.objects.filter(user=technician_a).update(on_call=False)
    tech = new_page()
    tech.goto("/")
    expect(tech).to_have_url(re.compile(r"/accounts/login/"))
    screenshot(tech, "login")
    login(tech, technician_a)
    expect(tech.locator("#alert-list")).to_contain_text("No alerts yet")

    status, answer = post_alert(server.url, acme_key, message="Disk / is 95% full")
    assert status == 202, answer

    # No reload: the live signal makes the regions re-fetch themselves.
    alerts = tech.locator("#alert-list")
    expect(alerts).to_contain_text("Disk / is 95% full")
    incidents = tech.locator("#incident-list tr[data-incident]")
    expect(incidents).to_have_count(1)
    expect(incidents).to_contain_text("disk_full on srv-db-01")
    expect(incidents).to_contain_text("Unassigned")

    # A second tool reports the same problem (it joins the incident); another one opens a
    # second incident.
    for fields in (
        {"message": "Disk / is 97% full", "tool_source": "Datadog"},
        {
            "asset_name": "srv-web-02",
            "signature": "service_down:nginx",
            "severity": "critical",
            "message": "nginx is not running",
            "tool_source": "Datadog",
        },
    ):
        status, answer = post_alert(server.url, acme_key, **fields)
        assert status == 202, answer
    expect(alerts.locator("tbody tr")).to_have_count(3)
    expect(incidents).to_have_count(2)
    disk = incidents.filter(has_text="disk_full on srv-db-01")
    expect(disk.locator("td.num").last).to_have_text("2")
    expect(tech.locator('[data-metric="critical"]')).to_have_text("1")
    expect(tech.locator('[data-metric="high"]')).to_have_text("2")
    expect(tech.locator('[data-metric="incidents"]')).to_have_text("2")
    expect(tech.locator('[data-metric="noise"]')).to_have_text("33%")
    screenshot(tech, "dashboard")

    disk.get_by_role("link").click()
    incident = Incident.objects.get(company__slug="acme", signature="disk_full")
    expect(tech).to_have_url(re.compile(rf"/incidents/{incident.pk}/$"))
    expect_live(tech)
    header = tech.locator("#incident-header")
    expect(header).to_contain_text("Nobody yet")
    expect(tech.locator("#alerts tbody tr")).to_have_count(2)
    screenshot(tech, "incident")

    # The company admin assigns it from the same page in their own browser.
    admin = new_page()
    login(admin, company_admin_a)
    admin.goto(f"/incidents/{incident.pk}/")
    actions = admin.locator("#incident-actions")
    actions.locator("select[name=assignee]").select_option(str(technician_a.pk))
    actions.get_by_role("button", name="Assign").click()
    expect(actions).to_contain_text("Assigned to Tom Baker")

    # The technician's open page follows: header, timeline and the bell (the critical
    # incident was announced to the company's people before).
    expect(header).to_contain_text("Tom Baker")
    expect(tech.locator("#timeline")).to_contain_text("Assigned to Tom Baker")
    expect(tech.locator("#bell-count")).to_have_text("2")
    tech.locator(".bell-button").click()
    dropdown = tech.locator("#bell-dropdown")
    expect(dropdown).to_contain_text("Assigned to you: disk_full on srv-db-01")
    expect(dropdown).to_contain_text("Critical: service_down:nginx on srv-web-02")
    screenshot(tech, "notifications", full_page=False)
    dropdown.get_by_role("button", name="Close notifications").click()
    expect(dropdown).to_be_empty()

    actions = tech.locator("#incident-actions")
    actions.locator("select[name=status]").select_option("in_progress")
    actions.get_by_role("button", name="Update status").click()
    expect(header.locator(".badge.status-in_progress")).to_have_text("In progress")

    actions.locator("select[name=status]").select_option("resolved")
    actions.locator("textarea[name=note]").fill("Rotated the logs and grew the volume to 200 GB.")
    actions.get_by_role("button", name="Update status").click()
    expect(header.locator(".badge.status-resolved")).to_have_text("Resolved")
    expect(header).to_contain_text("by Tom Baker")
    timeline = tech.locator("#timeline")
    expect(timeline).to_contain_text("Status: New → In progress")
    expect(timeline).to_contain_text("Status: In progress → Resolved")
    expect(timeline).to_contain_text("Rotated the logs and grew the volume to 200 GB.")
    expect(actions).to_contain_text("Resolved incidents are not assigned")
    screenshot(tech, "incident-resolved")

    incident.refresh_from_db()
    assert (incident.status, incident.resolution) == ("resolved", "manual")
    assert incident.assigned_to == technician_a and incident.resolved_by == technician_a


def test_msp_admin_creates_a_company_and_the_key_in_the_dialog_works(
    server, page, msp_admin, company_a, technician_a
):
    login(page, msp_admin)
    page.goto("/companies/new/")
    page.fill("#id_name", "Globex Industries")
    page.fill("#id_timezone", "Europe/Paris")
    page.fill("#id_assets-0-name", "web-01")
    page.select_option("#id_assets-0-asset_type", "webserver")
    page.fill("#id_assets-0-os", "Ubuntu 24.04")
    page.check("#id_assets-0-is_critical")
    page.get_by_role("button", name="Create company").click()

    dialog = page.locator("dialog#api-key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Globex Industries is ready to receive alerts")
    expect(dialog).to_contain_text("Created with 1 asset")
    api_key = page.locator("#api-key").input_value()
    assert API_KEY.match(api_key), api_key
    screenshot(page, "company-api-key")

    globex = Company.objects.get(name="Globex Industries")
    assert globex.timezone == "Europe/Paris"
    assert list(globex.assets.values_list("name", "is_critical")) == [("web-01", True)]
    status, answer = post_alert(server.url, api_key, asset_name="web-01", signature="http_5xx")
    assert status == 202, answer
    assert globex.alerts.count() == 1

    # The other pages of an MSP admin, with this company in them.
    CompanyFactory(name="Initech", slug="initech")
    page.get_by_role("link", name="Done").click()
    expect(page.locator("h1")).to_contain_text("Globex Industries")
    expect(page.locator("main")).to_contain_text("web-01")
    screenshot(page, "company")

    page.goto(f"/companies/{globex.slug}/settings/")
    expect(page.locator("main form").first).to_be_visible()
    screenshot(page, "company-settings")

    page.goto("/companies/")
    table = page.locator("#company-table")
    for name in ("Acme Corp", "Globex Industries", "Initech"):
        expect(table).to_contain_text(name)
    screenshot(page, "companies")

    page.goto("/team/")
    expect(page.locator("main")).to_contain_text("tech@acme.example")
    screenshot(page, "team")

    page.goto("/audit/")
    expect(page.locator("main")).to_contain_text("Globex Industries")
    screenshot(page, "audit-log")
