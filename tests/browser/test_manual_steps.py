"""Manual runbook steps in a real browser: with no AWS link the runbook's steps are shown to
follow by hand, and the technician closes them as fixed, which resolves the incident."""

from playwright.sync_api import expect

from apps.incidents.models import Incident
from tests.browser import login
from tests.incidents.factories import IncidentFactory
from tests.runbooks.factories import RunbookFactory


def test_manual_steps_closed_as_fixed(server, page, company_a, technician_a):
    incident = IncidentFactory(company=company_a, signature="disk_full")
    RunbookFactory(company=company_a, name="Clean the journal", auto_approve=False)
    login(page, technician_a)
    page.goto(f"/incidents/{incident.pk}/")
    panel = page.locator("#incident-runbooks")
    panel.get_by_role("button", name="Run runbook").click()
    expect(panel).to_contain_text("Follow these steps by hand")

    panel.locator("input[name=note]").fill("Journal vacuumed, 40 GB free")
    panel.get_by_role("button", name="Done: fixed").click()

    expect(panel).to_contain_text("the incident is resolved")
    expect(page.locator("#incident-header")).to_contain_text("Resolved")
    expect(page.locator("#timeline")).to_contain_text("Journal vacuumed, 40 GB free")
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert Incident.objects.get(pk=incident.pk).resolved_by == technician_a
