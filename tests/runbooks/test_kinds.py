"""Runbooks of three kinds: shell and PowerShell through SSM's run-command documents (moto
records what was sent over HTTP), Automation documents with StartAutomationExecution and
GetAutomationExecution (moto 5.2 has neither: botocore's Stubber on the real client)."""

import pytest
import yaml
from botocore.stub import ANY, Stubber

from apps.common.errors import Conflict
from apps.incidents.models import Incident
from apps.runbooks import catalog
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.matching import runbook_for
from apps.runbooks.services import execution_poll, execution_request, execution_start
from apps.runbooks.tasks import runbook_execute
from apps.tenants.aws import client_for
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db

AUTOMATION_ID = "4f1d2c3b-aaaa-bbbb-cccc-123456789012"


def windows(healing, *, platform="windows", os=""):
    asset = healing["asset"]
    asset.platform, asset.os = platform, os
    asset.save()


def powershell_runbook(**extra):
    return RunbookFactory(
        name="Restart IIS",
        kind="powershell",
        actions=["Restart-Service W3SVC", "iisreset /status"],
        health_check_type="command",
        health_check_command="Get-Service W3SVC",
        **extra,
    )


def automation_runbook(**extra):
    return RunbookFactory(
        name="Restart the instance",
        kind="automation",
        actions=[],
        document_name="AWS-RestartEC2Instance",
        document_parameters={"InstanceId": "{{instance_id}}"},
        **extra,
    )


def test_windows_instance_gets_the_powershell_runbook(healing, moto_endpoint):
    windows(healing)
    powershell = powershell_runbook()
    company = healing["company"]
    assert runbook_for(company=company, signature="disk_full", platform="windows") == powershell
    assert (
        runbook_for(company=company, signature="disk_full", platform="linux") == healing["runbook"]
    )


def test_asset_os_decides_when_ssm_has_not_reported(healing, moto_endpoint):
    windows(healing, platform="", os="Windows Server 2022")
    with pytest.raises(Conflict, match="runs Windows"):
        execution_request(incident=healing["incident"], runbook=healing["runbook"], actor=None)


def test_powershell_runbook_is_sent_with_run_powershell_script(
    healing, moto_endpoint, django_capture_on_commit_callbacks
):
    windows(healing)
    runbook = powershell_runbook()
    with django_capture_on_commit_callbacks(execute=True):
        execution = execution_request(incident=healing["incident"], runbook=runbook)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    assert execution.kind == "powershell" and execution.document_name == "AWS-RunPowerShellScript"
    sent = client_for(healing["company"], "ssm").list_commands(CommandId=execution.command_id)
    command = sent["Commands"][0]
    assert command["DocumentName"] == "AWS-RunPowerShellScript"
    lines = command["Parameters"]["commands"]
    assert lines[0] == "$ErrorActionPreference = 'Stop'"
    assert lines[1:3] == ["Restart-Service W3SVC", "if ($LASTEXITCODE) { exit $LASTEXITCODE }"]
    assert "Get-Service W3SVC" in lines and 'Write-Output "AW_HEALTH_EXIT=$aw_rc"' in lines


def test_automation_request_fixes_document_and_parameters(healing, moto_endpoint):
    runbook = automation_runbook(risk="medium", auto_approve=False)
    execution = execution_request(incident=healing["incident"], runbook=runbook)
    assert execution.status == ExecutionStatus.AWAITING_APPROVAL
    assert execution.document_name == "AWS-RestartEC2Instance" and execution.script == ""
    assert execution.parameters == {"InstanceId": ["i-0123456789abcdef0"]}


def automation(status, *steps, failure=""):
    found = {
        "AutomationExecutionId": AUTOMATION_ID,
        "DocumentName": "AWS-RestartEC2Instance",
        "AutomationExecutionStatus": status,
        "StepExecutions": list(steps),
    }
    if failure:
        found["FailureMessage"] = failure
    return ("get_automation_execution", {"AutomationExecution": found})


def step(name, action, status, outputs=None, failure=""):
    found = {"StepName": name, "Action": action, "StepStatus": status}
    if outputs:
        found["Outputs"] = outputs
    if failure:
        found["FailureMessage"] = failure
    return found


def run_automation(healing, *responses, django_capture_on_commit_callbacks):
    runbook = automation_runbook()
    ssm = client_for(healing["company"], "ssm")
    stubber = Stubber(ssm)
    stubber.add_response(
        "start_automation_execution",
        {"AutomationExecutionId": AUTOMATION_ID},
        {
            "DocumentName": "AWS-RestartEC2Instance",
            "Parameters": {"InstanceId": ["i-0123456789abcdef0"]},
        },
    )
    for method, response in responses:
        stubber.add_response(method, response, {"AutomationExecutionId": AUTOMATION_ID})
    with stubber:
        with django_capture_on_commit_callbacks(execute=True):
            execution = execution_request(incident=healing["incident"], runbook=runbook)
        while execution_poll(execution_id=execution.pk) is not None:
            pass
    stubber.assert_no_pending_responses()
    execution.refresh_from_db()
    return execution


def test_automation_heals_and_shows_step_outputs(
    healing, moto_endpoint, django_capture_on_commit_callbacks
):
    execution = run_automation(
        healing,
        automation("InProgress", step("stopInstances", "aws:changeInstanceState", "Success")),
        automation(
            "Success",
            step(
                "stopInstances",
                "aws:changeInstanceState",
                "Success",
                {"CurrentState": ["stopped"]},
            ),
            step(
                "startInstances",
                "aws:changeInstanceState",
                "Success",
                {"CurrentState": ["running"]},
            ),
        ),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert execution.status == ExecutionStatus.SUCCESS
    assert execution.command_id == AUTOMATION_ID and execution.ssm_status == "Success"
    assert "2. startInstances (aws:changeInstanceState): Success" in execution.output
    assert "   CurrentState: running" in execution.output
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.resolution == "self_healed"


def test_failed_automation_hands_over_with_the_failure(
    healing, moto_endpoint, django_capture_on_commit_callbacks
):
    execution = run_automation(
        healing,
        automation(
            "Failed",
            step("stopInstances", "aws:changeInstanceState", "Failed", failure="Not authorized"),
            failure="Step stopInstances failed.",
        ),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error == "The Automation execution ended with status Failed."
    assert "Not authorized" in execution.output
    assert Incident.objects.get(pk=healing["incident"].pk).status == "new"


def test_automation_past_its_timeout_is_stopped(healing, moto_endpoint):
    from datetime import timedelta

    from django.utils import timezone

    from apps.runbooks.models import RunbookExecution

    runbook = automation_runbook(risk="medium", auto_approve=False)
    execution = execution_request(incident=healing["incident"], runbook=runbook)
    RunbookExecution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.PENDING)
    stubber = Stubber(client_for(healing["company"], "ssm"))
    stubber.add_response("start_automation_execution", {"AutomationExecutionId": AUTOMATION_ID})
    stubber.add_response(*automation("InProgress"))
    stubber.add_response(
        "stop_automation_execution", {}, {"AutomationExecutionId": AUTOMATION_ID, "Type": ANY}
    )
    with stubber:
        assert execution_start(execution_id=execution.pk) is True
        RunbookExecution.objects.filter(pk=execution.pk).update(
            started_at=timezone.now() - timedelta(seconds=runbook.timeout_seconds + 61)
        )
        assert execution_poll(execution_id=execution.pk) is None
    stubber.assert_no_pending_responses()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.TIMED_OUT


def test_yaml_round_trip_of_all_three_kinds(company_a):
    text = """
- name: Clean logs
  signature: disk_full
  risk_level: low
  actions: [journalctl --vacuum-size=200M]
- name: Clean temp
  signature: disk_full
  risk_level: low
  kind: powershell
  actions: ["Remove-Item C:\\\\Windows\\\\Temp\\\\* -Recurse -Force"]
- name: Restart
  signature: host_down
  risk_level: high
  kind: automation
  document: AWS-RestartEC2Instance
  parameters:
    InstanceId: "{{instance_id}}"
    Tags: [a, b]
"""
    result = catalog.runbook_import(text=text, company=company_a, replace=False)
    kinds = {r.name: r for r in result.created}
    assert kinds["Clean temp"].kind == "powershell"
    restart = kinds["Restart"]
    assert restart.kind == "automation" and restart.document_name == "AWS-RestartEC2Instance"
    assert restart.document_parameters == {"InstanceId": "{{instance_id}}", "Tags": ["a", "b"]}
    exported = list(yaml.safe_load_all(catalog.runbooks_to_yaml(result.created)))
    by_name = {d["name"]: d for d in exported}
    assert "kind" not in by_name["Clean logs"]
    assert by_name["Restart"]["document"] == "AWS-RestartEC2Instance"
    assert "actions" not in by_name["Restart"]
    again = catalog.runbook_import(
        text=catalog.runbooks_to_yaml(result.created), company=company_a, replace=True
    )
    assert len(again.updated) == 3


@pytest.mark.parametrize(
    "extra, problem",
    [
        ("parameters: {A: {b: 1}}", "parameters.A: must be text or a list of texts."),
        ("document: AWS-X\nparameters: {A: ''}", "parameters: Parameters must map names"),
        ("document: AWS-X\nactions: [ls]", "actions: An Automation runbook runs its document"),
        ("document: 'no spaces'", "document: Give the Automation document's name"),
    ],
)
def test_automation_import_problems_name_the_field(company_a, extra, problem):
    text = f"name: X\nsignature: s\nrisk_level: low\nkind: automation\n{extra}\n"
    with pytest.raises(catalog.RunbookImportError) as caught:
        catalog.runbook_import(text=text, company=company_a, replace=False)
    assert any(p.startswith(f"Document 1 (“X”): {problem}") for p in caught.value.problems), (
        caught.value.problems
    )


def test_task_sends_automation_once(healing, moto_endpoint):
    runbook = automation_runbook(risk="medium", auto_approve=False)
    execution = execution_request(incident=healing["incident"], runbook=runbook)
    from apps.runbooks.models import RunbookExecution

    RunbookExecution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.PENDING)
    stubber = Stubber(client_for(healing["company"], "ssm"))
    stubber.add_response("start_automation_execution", {"AutomationExecutionId": AUTOMATION_ID})
    with stubber:
        runbook_execute.apply(args=(execution.pk,))
        runbook_execute.apply(args=(execution.pk,))
    execution.refresh_from_db()
    assert execution.command_id == AUTOMATION_ID


def test_approval_page_shows_the_document_and_parameters(healing, moto_endpoint, client):
    from tests.factories import UserFactory

    runbook = automation_runbook(risk="high", auto_approve=False)
    healing["asset"].ssm_ping_status = "ConnectionLost"
    healing["asset"].save()
    execution = execution_request(incident=healing["incident"], runbook=runbook)
    client.force_login(UserFactory(role="MSP Admin"))
    page = client.get(f"/approvals/{execution.approval.pk}/").content.decode()
    assert '<code id="approval-document">AWS-RestartEC2Instance</code>' in page
    assert "<dt>InstanceId</dt><dd><code>i-0123456789abcdef0</code></dd>" in page
    assert "agent as ConnectionLost" in page


def test_company_admin_adds_an_automation_runbook(company_a, company_admin_a, client):
    client.force_login(company_admin_a)
    response = client.post(
        "/runbooks/new/",
        {
            "scope": str(company_a.pk),
            "name": "Restart",
            "signature_pattern": "host_down",
            "risk": "high",
            "kind": "automation",
            "document_name": "AWS-RestartEC2Instance",
            "document_parameters": '{"InstanceId": "{{instance_id}}"}',
            "health_check_type": "none",
            "timeout_seconds": "600",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    runbook = company_a.runbooks.get(name="Restart")
    assert runbook.document_parameters == {"InstanceId": "{{instance_id}}"}
    page = client.get(f"/runbooks/{runbook.pk}/edit/").content.decode()
    assert "StartAutomationExecution runs the document <code>AWS-RestartEC2Instance</code>" in page


def test_catalog_lists_each_runbooks_kind(company_a, company_admin_a, client):
    RunbookFactory(company=company_a, name="Clean logs")
    powershell_runbook(company=company_a)
    automation_runbook(company=company_a)
    client.force_login(company_admin_a)
    page = client.get("/runbooks/").content.decode()
    assert '<div class="small muted" data-kind="shell">Shell</div>' in page
    assert '<div class="small muted" data-kind="powershell">PowerShell</div>' in page
    assert "Automation: <code>AWS-RestartEC2Instance</code>" in page


def test_automation_without_aws_link_becomes_a_manual_step(
    healing, django_capture_on_commit_callbacks
):
    from apps.tenants.models import AwsLink

    AwsLink.objects.filter(company=healing["company"]).update(role_arn="")
    runbook = automation_runbook()
    with django_capture_on_commit_callbacks(execute=True):
        execution = execution_request(incident=healing["incident"], runbook=runbook)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.MANUAL
    texts = list(healing["incident"].events.values_list("text", flat=True))
    assert any(
        "1. Start the Automation document AWS-RestartEC2Instance in the AWS console with "
        "InstanceId=i-0123456789abcdef0." in t
        for t in texts
    )


def test_unreachable_agent_is_flagged_on_the_incident(healing, moto_endpoint):
    healing["asset"].ssm_ping_status = "ConnectionLost"
    healing["asset"].save()
    runbook = automation_runbook(risk="medium", auto_approve=False)
    execution_request(incident=healing["incident"], runbook=runbook)
    texts = list(healing["incident"].events.values_list("text", flat=True))
    assert any("last saw the agent of srv-db-01 as ConnectionLost" in t for t in texts)
