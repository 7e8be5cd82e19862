"""The Incidents page's bulk merge and the asset page's dependencies, in a real browser."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from apps.audit.models import AuditLog
from apps.incidents.models import Incident
from apps.tenants.models import Asset, AssetDependency
from tests.browser import login
from tests.incidents.factories import AlertFactory, IncidentFactory


def test_bulk_merge_refuses_two_companies_then_merges_one_companys(
    server, page, company_a, company_b, msp_admin
):
    now = timezone.now()
    acme = [
        IncidentFactory(
            company=company_a,
            asset_name=f"srv-app-0{n}",
            signature="db_connection_error",
            first_alert_at=now - timedelta(minutes=30 - n),
        )
        for n in range(3)
    ]
    for incident in acme:
        AlertFactory(incident=incident, event_time=incident.first_alert_at)
    globex = IncidentFactory(company=company_b, asset_name="web-1", signature="db_connection_error")
    login(page, msp_admin)
    page.goto("/incidents/?q=db_connection_error")
    rows = page.locator("#incident-results tr[data-incident]")
    expect(rows).to_have_count(4)

    page.check(f"input[name=ids][value='{acme[0].pk}']")
    page.check(f"input[name=ids][value='{globex.pk}']")
    page.select_option("#bulk-action", "merge")
    page.click("#bulk-apply")
    expect(page.locator(".messages")).to_contain_text(
        "Incidents of different companies cannot be merged: the selection has Acme Corp and Globex."
    )
    expect(rows).to_have_count(4)

    for incident in acme:
        page.check(f"input[name=ids][value='{incident.pk}']")
    page.select_option("#bulk-action", "merge")
    page.click("#bulk-apply")
    expect(page.locator(".messages")).to_contain_text(f"2 merged into #{acme[0].pk}")
    expect(page).to_have_url(re.compile(r"/incidents/\?q=db_connection_error$"))
    expect(rows).to_have_count(2)
    kept = Incident.objects.get(pk=acme[0].pk)
    assert kept.alerts.count() == 3
    page.goto(f"/incidents/{kept.pk}/")
    expect(page.locator("body")).to_contain_text(f"Incident #{acme[1].pk}")


def test_a_company_admin_edits_dependencies_on_the_asset_page(
    server, page, company_a, company_admin_a
):
    app = Asset.objects.create(company=company_a, name="app-01")
    db = Asset.objects.create(company=company_a, name="db-01")
    login(page, company_admin_a)
    page.goto(f"/companies/{company_a.slug}/")
    page.get_by_role("link", name="app-01", exact=True).click()
    expect(page.locator("h1")).to_have_text("app-01")
    card = page.locator("#asset-dependencies")
    expect(card).to_contain_text("Nothing: it depends on no other asset.")

    page.fill("#id_depends_on", "db-01")
    page.click("#dependency-add")
    expect(card.locator("[data-depends-on='db-01']")).to_be_visible()
    assert AssetDependency.objects.filter(asset=app, depends_on=db).exists()

    # From db-01's page: app-01 depends on it; db-01 → app-01 would loop.
    card.get_by_role("link", name="db-01").click()
    expect(page.locator("h1")).to_have_text("db-01")
    expect(card.locator("[data-dependent='app-01']")).to_be_visible()
    page.fill("#id_depends_on", "app-01")
    page.click("#dependency-add")
    expect(card.locator(".field-error")).to_have_text(
        "Dependencies may not loop: app-01 → db-01 → app-01."
    )
    expect(page).to_have_url(re.compile(rf"/assets/{db.pk}/$"))

    card.get_by_role("button", name="Remove the dependency of app-01").click()
    expect(card).to_contain_text("Nothing depends on it.")
    assert not AssetDependency.objects.exists()
    assert AuditLog.objects.filter(action="dependency_removed").count() == 1
