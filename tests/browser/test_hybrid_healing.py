"""Onboarding an on-premises Windows server and healing it with a PowerShell runbook and an
Automation runbook, behind approvals, in a real browser against a real server and worker.

The server and the worker are other processes, so botocore's Stubber cannot reach their
clients: they talk to a small HTTP front on moto's server that answers the SSM operations
moto 5.2 lacks (CreateActivation, DescribeInstanceInformation, ListTagsForResource of a
managed instance, Start/GetAutomationExecution) with canned AWS answers, and passes every
other request (STS AssumeRole, SSM SendCommand and GetCommandInvocation) through to moto.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from apps.approvals.models import ApprovalRequest
from apps.incidents.models import Incident
from apps.runbooks.models import RunbookExecution
from apps.tenants.models import Asset
from apps.tenants.services import api_key_regenerate
from tests.browser import login, post_alert, screenshot
from tests.runbooks.factories import AwsLinkFactory

SERVER = "mi-0a1b2c3d4e5f60718"
CODE = "Kq8vN2cExampleActivationCode"
ACTIVATION_ID = "3f9c2a51-7d1e-4b8a-9c0d-2e6f8a1b4c7d"
AUTOMATION_ID = "0b7c8d9e-1f2a-4b3c-8d5e-6f7a8b9c0d1e"
CANNED = {
    "AmazonSSM.CreateActivation": {"ActivationId": ACTIVATION_ID, "ActivationCode": CODE},
    "AmazonSSM.DescribeInstanceInformation": {
        "InstanceInformationList": [
            {
                "InstanceId": SERVER,
                "PingStatus": "Online",
                "AgentVersion": "3.3.131.0",
                "PlatformType": "Windows",
                "PlatformName": "Microsoft Windows Server 2022 Datacenter",
                "PlatformVersion": "10.0.20348",
                "ResourceType": "ManagedInstance",
                "IPAddress": "10.20.0.15",
                "Name": "filesrv01",
            }
        ]
    },
    "AmazonSSM.ListTagsForResource": {"TagList": [{"Key": "env", "Value": "prod"}]},
    "AmazonSSM.StartAutomationExecution": {"AutomationExecutionId": AUTOMATION_ID},
    "AmazonSSM.GetAutomationExecution": {
        "AutomationExecution": {
            "AutomationExecutionId": AUTOMATION_ID,
            "DocumentName": "AWS-RestartEC2Instance",
            "AutomationExecutionStatus": "Success",
            "StepExecutions": [
                {
                    "StepName": "restart",
                    "Action": "aws:runCommand",
                    "StepStatus": "Success",
                    "Outputs": {"Status": ["Success"]},
                }
            ],
        }
    },
}


@pytest.fixture
def aws_front(moto_endpoint):
    """The HTTP front: canned answers for what moto lacks, moto for the rest. Records the
    operations it answered."""
    answered: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target = self.headers.get("X-Amz-Target", "")
            if target in CANNED:
                answered.append({"target": target, "params": json.loads(body or b"{}")})
                self._answer(200, "application/x-amz-json-1.1", json.dumps(CANNED[target]).encode())
                return
            request = urllib.request.Request(
                moto_endpoint + self.path,
                data=body,
                method="POST",
                headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            )
            try:
                with urllib.request.urlopen(request, timeout=20) as answer:
                    self._answer(answer.status, answer.headers["Content-Type"], answer.read())
            except urllib.error.HTTPError as error:
                self._answer(error.code, error.headers["Content-Type"], error.read())

        def _answer(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type or "text/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    front = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=front.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{front.server_port}", "answered": answered}
    front.shutdown()
    front.server_close()


@pytest.fixture
def process_env(aws_front):
    return {
        "AWS_ENDPOINT_URL": aws_front["url"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@pytest.fixture
def acme_key(company_a):
    AwsLinkFactory(company=company_a)
    return api_key_regenerate(company=company_a)


def add_runbook(page, **fields: str) -> None:
    page.goto("/runbooks/new/")
    page.select_option("select[name=scope]", label="Acme Corp")
    page.fill("input[name=name]", fields["name"])
    page.fill("input[name=signature_pattern]", fields["signature"])
    page.select_option("select[name=risk]", fields["risk"])
    page.select_option("select[name=kind]", fields["kind"])
    if "actions" in fields:
        page.fill("textarea[name=actions]", fields["actions"])
    if "document" in fields:
        page.fill("input[name=document_name]", fields["document"])
        page.fill("textarea[name=document_parameters]", fields["parameters"])
    page.get_by_role("button", name="Add runbook").click()
    expect(page.locator(".messages")).to_contain_text(fields["name"])


def approve(page, approval: ApprovalRequest) -> None:
    page.goto(f"/approvals/{approval.pk}/")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messages")).to_contain_text("Approved:")


def test_onboard_a_windows_server_and_heal_it_two_ways(
    server, new_page, acme_key, aws_front, msp_admin, company_admin_a
):
    admin = new_page()
    login(admin, company_admin_a)

    # Onboard: an activation, its code shown once, the server appears, one click.
    admin.goto("/companies/acme/")
    admin.locator("#onboard-servers").click()
    admin.fill("input[name=iam_role]", "AlertWhispererSSMServers")
    admin.get_by_role("button", name="Create activation").click()
    expect(admin.locator("#activation-code")).to_have_value(CODE)
    expect(admin.locator("#install-windows")).to_contain_text(f"CODE={CODE}")
    row = admin.locator(f'tr[data-instance="{SERVER}"]')
    expect(row).to_contain_text("Online")
    screenshot(admin, "hybrid-activation")
    row.get_by_role("button", name="Add as asset").click()
    expect(admin.locator(".messages")).to_contain_text(f"filesrv01 ({SERVER}) is now an asset.")
    asset = Asset.objects.get(instance_id=SERVER)
    assert (asset.platform, asset.tags) == ("windows", {"env": "prod"})

    # Two runbooks through the form.
    add_runbook(
        admin,
        name="Restart IIS",
        signature="service_down:*",
        risk="medium",
        kind="powershell",
        actions="Restart-Service W3SVC",
    )
    add_runbook(
        admin,
        name="Restart the server",
        signature="host_unresponsive",
        risk="high",
        kind="automation",
        document="AWS-RestartEC2Instance",
        parameters='{"InstanceId": "{{instance_id}}"}',
    )

    # PowerShell: a medium-risk request, a company admin approves, it heals.
    status, answer = post_alert(
        server.url, acme_key, asset_name="filesrv01", signature="service_down:w3svc"
    )
    assert status == 202, answer
    approval = _wait_for_approval("Restart IIS")
    admin.goto(f"/approvals/{approval.pk}/")
    expect(admin.locator("#approval-document")).to_have_text("AWS-RunPowerShellScript")
    approve(admin, approval)
    iis = Incident.objects.get(signature="service_down:w3svc")
    admin.goto(f"/incidents/{iis.pk}/")
    expect(admin.locator("#incident-header")).to_contain_text("Self-healed by a runbook")

    # Automation: a high-risk request only an MSP admin may approve; it heals.
    status, answer = post_alert(
        server.url, acme_key, asset_name="filesrv01", signature="host_unresponsive"
    )
    assert status == 202, answer
    approval = _wait_for_approval("Restart the server")
    msp = new_page()
    login(msp, msp_admin)
    msp.goto(f"/approvals/{approval.pk}/")
    expect(msp.locator("#approval-document")).to_have_text("AWS-RestartEC2Instance")
    expect(msp.locator("#approval-parameters")).to_contain_text(SERVER)
    screenshot(msp, "approval-automation")
    approve(msp, approval)
    host = Incident.objects.get(signature="host_unresponsive")
    msp.goto(f"/incidents/{host.pk}/")
    expect(msp.locator("#incident-header")).to_contain_text("Self-healed by a runbook")
    expect(msp.locator("#incident-runbooks")).to_contain_text(
        re.compile(r"restart \(aws:runCommand\): Success")
    )

    powershell = RunbookExecution.objects.get(incident=iis)
    assert (powershell.status, powershell.document_name) == ("success", "AWS-RunPowerShellScript")
    automation = RunbookExecution.objects.get(incident=host)
    assert (automation.status, automation.command_id) == ("success", AUTOMATION_ID)
    started = [a for a in aws_front["answered"] if a["target"].endswith("StartAutomationExecution")]
    assert [a["params"] for a in started] == [
        {"DocumentName": "AWS-RestartEC2Instance", "Parameters": {"InstanceId": [SERVER]}}
    ]


def _wait_for_approval(runbook: str, timeout: float = 20.0) -> ApprovalRequest:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ApprovalRequest.objects.filter(
            execution__runbook__name=runbook, status="pending"
        ).first()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no approval request for {runbook}")
