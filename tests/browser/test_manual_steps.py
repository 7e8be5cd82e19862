"""Runbooks on the incident page in a real browser: with no AWS link the runbook's steps are
shown to follow by hand and the technician closes them as fixed, which resolves the
incident; an approver sees the exact commands and how they will run."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from apps.approvals.models import ApprovalRequest
from apps.incidents.models import Incident
from apps.runbooks.models import RunbookExecution
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


def test_the_approver_sees_what_will_run(server, page, healing, company_a, company_admin_a):
    runbook = healing["runbook"]
    runbook.risk, runbook.auto_approve = "medium", False
    runbook.actions = ["sudo journalctl --vacuum-size=200M", "df -h /"]
    runbook.save()
    # Stored as execution_request stores them (it also notifies, which cannot run here).
    execution = RunbookExecution.objects.create(
        company=company_a,
        incident=healing["incident"],
        runbook=runbook,
        status="awaiting_approval",
        mode="ssm",
        instance_id="i-0123456789abcdef0",
        requested_by=healing["technician"],
    )
    ApprovalRequest.objects.create(
        company=company_a,
        execution=execution,
        risk="medium",
        requested_by=healing["technician"],
        reason="full",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    login(page, company_admin_a)
    page.goto(f"/incidents/{healing['incident'].pk}/")
    what = page.locator("#incident-runbooks .approval-what")
    expect(what).to_contain_text("automatically through AWS Systems Manager on i-0123456789abcdef0")
    expect(what.locator("li")).to_have_text(["sudo journalctl --vacuum-size=200M", "df -h /"])
    expect(page.locator("#incident-runbooks")).to_contain_text("Approve")
