"""The layout from a phone to a wide screen: no page scrolls sideways at 390 px (tables
scroll inside their card), the header folds its navigation behind a menu button there, and
the MSP admin's navigation is one row at 1440 px."""

import pytest
from playwright.sync_api import expect

from apps.tenants.models import Asset, AssetDependency
from apps.tenants.services import api_key_regenerate
from tests.browser import login
from tests.incidents.factories import AlertFactory, IncidentFactory

PHONE = {"width": 390, "height": 844}
OVERFLOW = """() => {
  const doc = document.documentElement;
  const wide = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 1)
    .filter((el) => !el.closest(".table-scroll, .sr-only, [hidden]"))
    .slice(0, 3)
    .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${el.getBoundingClientRect().right}`);
  return {scroll: doc.scrollWidth, client: doc.clientWidth, wide};
}"""


@pytest.fixture
def pages(company_a):
    incident = IncidentFactory(
        company=company_a,
        asset_name="srv-db-01-with-a-rather-long-hostname.internal.acme.example",
        title="disk_full on srv-db-01-with-a-rather-long-hostname.internal.acme.example",
    )
    for _ in range(3):
        AlertFactory(incident=incident, message="Disk / is 95% full " * 8)
    api_key_regenerate(company=company_a)
    asset = Asset.objects.create(company=company_a, name=incident.asset_name)
    db = Asset.objects.create(company=company_a, name="db-cluster-primary-" + "x" * 40)
    AssetDependency.objects.create(company=company_a, asset=asset, depends_on=db)
    return [
        "/",
        "/incidents/",
        f"/incidents/{incident.pk}/",
        "/silences/",
        "/kpis/",
        "/compliance/",
        "/chat/acme/",
        "/approvals/",
        "/runbooks/",
        "/companies/",
        f"/companies/{company_a.slug}/",
        f"/companies/{company_a.slug}/assets/{asset.pk}/",
        "/team/",
        "/audit/",
        "/notifications/",
    ]


def test_no_page_scrolls_sideways_at_390_px(server, page, msp_admin, company_b, pages):
    login(page, msp_admin)
    page.set_viewport_size(PHONE)
    overflowing = {}
    for path in pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        measured = page.evaluate(OVERFLOW)
        if measured["scroll"] > measured["client"]:
            overflowing[path] = measured
    assert overflowing == {}


def test_the_header_folds_on_a_phone(server, page, technician_a):
    login(page, technician_a)
    page.set_viewport_size(PHONE)
    nav = page.locator(".topnav")
    expect(nav).to_be_hidden()
    header = page.locator(".topbar").bounding_box()
    assert header["height"] <= 64
    page.get_by_role("button", name="Menu").click()
    expect(nav.get_by_role("link", name="Incidents")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_in_viewport()


def test_the_msp_admins_navigation_is_one_row_at_1440_px(
    server, page, msp_admin, company_a, company_b
):
    login(page, msp_admin)
    links = page.locator(".topnav a")
    tops = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}
    assert len(tops) == 1
    # Nothing hidden under the account controls: the last link ends before they start.
    last = links.nth(links.count() - 1).bounding_box()
    assert last["x"] + last["width"] <= page.locator(".topright").bounding_box()["x"]
    assert page.locator(".topbar").bounding_box()["height"] <= 64
