"""A silence in a real browser: made from an alert's "Silence like this" link, listed, and
the next matching alert arrives live, stored, marked as silenced."""

from playwright.sync_api import expect

from apps.alerts.models import Alert
from apps.tenants.services import api_key_regenerate
from tests.browser import login, post_alert
from tests.incidents.factories import AlertFactory, IncidentFactory


def test_silence_from_an_alert_then_a_matching_alert_shows_silenced(
    server, page, company_a, technician_a
):
    key = api_key_regenerate(company=company_a)
    incident = IncidentFactory(company=company_a, asset_name="srv-db-01", signature="disk_full")
    AlertFactory(incident=incident, signature="disk_full", message="Disk / is 91% full")
    login(page, technician_a)
    alerts = page.locator("#alert-list")
    expect(alerts).to_contain_text("Disk / is 91% full")
    expect(alerts.locator(".badge.quiet")).to_have_count(0)

    alerts.get_by_role("link", name="Silence like this").click()
    expect(page.locator("#silence-asset_name")).to_have_value("srv-db-01")
    expect(page.locator("#silence-signature")).to_have_value("disk_full")
    page.fill("#silence-reason", "Disk swap in progress")
    page.get_by_role("button", name="Silence", exact=True).click()
    expect(page.locator(".messages")).to_contain_text(
        "Silenced host=srv-db-01, signature=disk_full"
    )
    expect(page.locator("table.silences")).to_contain_text("Disk swap in progress")

    page.get_by_role("link", name="Dashboard").click()
    status, answer = post_alert(
        server.url, key, asset_name="srv-db-01", signature="disk_full", message="Disk / is 99% full"
    )
    assert status == 202, answer
    row = alerts.locator("tr", has_text="Disk / is 99% full")
    expect(row.locator(".badge.quiet")).to_have_text("silenced")
    assert Alert.objects.filter(message="Disk / is 99% full").exists()  # stored, not dropped
