"""The Content-Security-Policy in a real browser: the console's pages, htmx swaps, the
live socket, the copy buttons and the Django admin run without a single violation."""

import re

from playwright.sync_api import expect

from apps.tenants.services import api_key_regenerate
from tests.browser import login
from tests.incidents.factories import IncidentFactory

WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`);
});
"""


def test_console_pages_raise_no_policy_violation(page, msp_admin, company_a, company_b):
    incident = IncidentFactory(company=company_a)
    api_key_regenerate(company=company_a)
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    page.add_init_script(WATCH_VIOLATIONS)
    violations = []

    def collect():
        violations.extend(page.evaluate("window.__cspViolations"))

    login(page, msp_admin)
    collect()
    # htmx swap, then the close button that replaced hx-on.
    page.locator(".bell-button").click()
    close = page.locator(".notif-close")
    expect(close).to_be_visible()
    close.click()
    expect(close).to_have_count(0)
    # The company switcher submits on change.
    page.select_option("#company-switch", company_a.slug)
    expect(page.locator("#company-switch")).to_have_value(company_a.slug)
    collect()
    for path in (
        f"/incidents/{incident.pk}/",
        "/incidents/?q=srv",
        "/silences/",
        "/kpis/",
        "/compliance/",
        "/chat/acme/",
        "/admin/",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        collect()
    # A shown-once dialog: its copy button is revealed by console.js.
    page.goto(f"/companies/{company_a.slug}/settings/")
    page.get_by_role("button", name=re.compile("Enable HMAC")).first.click()
    expect(page.locator("[data-copy=hmac-secret]")).to_be_visible()
    collect()
    assert violations == []
    assert [m for m in messages if "Content Security Policy" in m] == []
