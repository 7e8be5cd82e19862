"""Self-healing behind an approval, in real browsers: an alert matches a medium-risk
runbook, a company admin approves the request on the Approvals page, and the incident page a
technician has open shows the incident self-healed (SSM on a moto server) without a reload."""

import re

import pytest
from playwright.sync_api import expect

from apps.approvals.models import ApprovalRequest
from apps.incidents.models import Incident
from apps.runbooks.models import RunbookExecution
from apps.tenants.models import Asset
from apps.tenants.services import api_key_regenerate
from tests.browser import login, post_alert, screenshot
from tests.runbooks.factories import AwsLinkFactory, RunbookFactory


@pytest.fixture
def process_env(moto_endpoint):
    """The server and the worker reach AWS (STS, SSM) on the moto server."""
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@pytest.fixture
def acme_key(company_a):
    """Acme, linked to AWS, with a web server SSM can reach and a medium-risk runbook that
    restarts nginx (never run unattended)."""
    AwsLinkFactory(company=company_a)
    Asset.objects.create(
        company=company_a, name="web-1", asset_type="webserver", instance_id="mi-0123456789abcdef0"
    )
    RunbookFactory(
        company=company_a,
        name="Restart nginx",
        signature_pattern="service_down:*",
        risk="medium",
        auto_approve=False,
        actions=["sudo systemctl restart nginx"],
    )
    return api_key_regenerate(company=company_a)


def test_approved_runbook_heals_the_incident_live(
    server, new_page, acme_key, technician_a, company_admin_a
):
    admin, tech = new_page(), new_page()
    login(admin, company_admin_a)
    admin.goto("/approvals/")
    expect(admin.locator("#pending-count")).to_have_text("0")
    login(tech, technician_a)

    status, answer = post_alert(
        server.url,
        acme_key,
        asset_name="web-1",
        signature="service_down:nginx",
        message="nginx is not running",
    )
    assert status == 202, answer

    # The request reaches the open Approvals page live.
    expect(admin.locator("#pending-count")).to_have_text("1")
    approval = ApprovalRequest.objects.get()
    row = admin.locator(f"#approval-{approval.pk}")
    expect(row).to_contain_text("Restart nginx")
    expect(row).to_contain_text("Medium")
    expect(row).to_contain_text("automatic")
    screenshot(admin, "approvals")

    incident = Incident.objects.get(signature="service_down:nginx")
    tech.goto(f"/incidents/{incident.pk}/")
    runbooks = tech.locator("#incident-runbooks")
    expect(runbooks).to_contain_text("Awaiting approval")
    expect(runbooks).to_contain_text("Waiting for a Company Admin or MSP admin")

    row.locator("textarea[name=note]").fill("Safe: it only restarts nginx.")
    row.get_by_role("button", name="Approve").click()
    expect(admin.locator(".messages")).to_contain_text(
        f"Approved: “Restart nginx” is queued for incident #{incident.pk}."
    )

    # The technician's page follows the run through to the end.
    header = tech.locator("#incident-header")
    expect(header.locator(".badge.status-resolved")).to_have_text("Resolved")
    expect(header).to_contain_text("Self-healed by a runbook")
    expect(runbooks.locator(".execution .badge").first).to_have_text("Success")
    expect(runbooks).to_contain_text("Approved by Alice Martin")
    expect(runbooks).to_contain_text("mi-0123456789abcdef0")
    expect(tech.locator("#timeline")).to_contain_text(re.compile("Restart nginx"))
    screenshot(tech, "incident-self-healed")

    incident.refresh_from_db()
    assert (incident.status, incident.resolution) == ("resolved", "self_healed")
    execution = RunbookExecution.objects.get(incident=incident)
    assert execution.status == "success" and len(execution.command_id) == 36
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by == company_admin_a
