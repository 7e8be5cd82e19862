"""The demo as a newcomer meets it: after `seed_demo`, with DEMO_MODE and AWS on a moto
server, the MSP admin sees a day of history and KPIs, the page says AWS is simulated, the
company page shows the demo webhook key, and approving the waiting high-risk runbook heals
its incident through SSM on the emulator."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from apps.accounts.models import User
from apps.approvals.models import ApprovalRequest
from apps.tenants.demo import demo_api_key
from apps.tenants.models import Company
from tests.browser import login


@pytest.fixture
def process_env(moto_endpoint):
    return {
        "DEMO_MODE": "1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
    }


@pytest.fixture
def demo(server, settings, server_password_hash):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    # The test process hashes with a fast hasher the server does not know.
    User.objects.update(password=server_password_hash)
    return User.objects.get(email="admin@alertwhisperer.com")


def test_a_newcomer_sees_the_product_and_approves_a_healing(page, demo):
    login(page, demo)
    expect(page.locator("[data-simulated-aws]")).to_contain_text("Simulated AWS (demo)")

    page.goto("/incidents/?status=all")
    expect(page.locator("#incident-results tr[data-incident]")).to_have_count(16)
    page.goto("/incidents/?status=resolved&q=disk_full")
    expect(page.locator("#incident-results tr[data-incident]")).to_have_count(2)

    page.goto("/kpis/")
    expect(page.locator("body")).to_contain_text("Self-healed")

    acme = Company.objects.get(slug="acme")
    page.goto("/companies/acme/")
    expect(page.locator("[data-demo-key]")).to_have_text(demo_api_key(acme))

    approval = ApprovalRequest.objects.get()
    page.goto("/approvals/")
    row = page.locator(f"#approval-{approval.pk}")
    expect(row).to_contain_text("Fail MySQL over to the replica")
    expect(row).to_contain_text("High")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved")

    page.goto(f"/incidents/{approval.execution.incident_id}/")
    header = page.locator("#incident-header")
    expect(header).to_contain_text("Self-healed by a runbook")
    expect(page.locator("#incident-runbooks .execution .badge").first).to_have_text("Success")
