"""Executing a runbook through SSM: the happy path against a real moto server over HTTP;
failure states (which moto cannot produce) with botocore's Stubber on the same client."""

from datetime import timedelta

import pytest
from botocore.stub import Stubber
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.incidents.models import Incident
from apps.notifications.models import Notification
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import RunbookExecution
from apps.runbooks.services import execution_poll, execution_request, execution_start
from apps.tenants.aws import client_for

pytestmark = pytest.mark.django_db


def test_low_risk_runbook_heals_through_ssm(
    healing, moto_endpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        execution = execution_request(incident=healing["incident"], runbook=healing["runbook"])
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    assert execution.command_id and execution.mode == "ssm"
    assert execution.instance_id == "i-0123456789abcdef0"
    assert execution.duration_seconds is not None
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.status == "resolved" and incident.resolution == "self_healed"
    assert incident.accepting is False
    log = AuditLog.objects.get(action="runbook_executed")
    assert log.details["result"] == "success" and log.details["command_id"] == execution.command_id
    texts = list(incident.events.values_list("text", flat=True))
    assert any("Sending" in t for t in texts) and any("Success" in t for t in texts)
    # moto recorded the command exactly as sent, over HTTP
    commands = client_for(healing["company"], "ssm").list_commands(CommandId=execution.command_id)
    sent = commands["Commands"][0]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Parameters"]["commands"][1] == "sudo journalctl --vacuum-size=200M"


def test_assumed_role_credentials_are_reused_until_near_expiry(healing, moto_endpoint):
    first = client_for(healing["company"], "ssm")
    assert client_for(healing["company"], "ssm") is first


def stubbed_ssm(company) -> tuple:
    client = client_for(company, "ssm")
    stubber = Stubber(client)
    return client, stubber


def start_with_stub(healing, *responses):
    """Create a pending execution and run it against a stubbed SSM client."""
    execution = RunbookExecution.objects.create(
        company=healing["company"],
        incident=healing["incident"],
        runbook=healing["runbook"],
        status=ExecutionStatus.PENDING,
        instance_id="i-0123456789abcdef0",
        document_name="AWS-RunShellScript",
        script="set -e\necho hi",
    )
    _, stubber = stubbed_ssm(healing["company"])
    for method, response in responses:
        if isinstance(response, tuple):
            stubber.add_client_error(
                method, service_error_code=response[0], service_message=response[1]
            )
        else:
            stubber.add_response(method, response)
    return execution, stubber


COMMAND_ID = "9c0e1d5a-8f3b-4c2e-9a77-3f1b2c4d5e6f"
SEND_OK = ("send_command", {"Command": {"CommandId": COMMAND_ID, "Status": "Pending"}})


def invocation(status: str, out: str = "", err: str = "", code: int = 0):
    return (
        "get_command_invocation",
        {
            "CommandId": COMMAND_ID,
            "InstanceId": "i-0123456789abcdef0",
            "Status": status,
            "StandardOutputContent": out,
            "StandardErrorContent": err,
            "ResponseCode": code,
        },
    )


def test_in_progress_then_failed_hands_the_incident_to_a_technician(
    healing, moto_endpoint, django_capture_on_commit_callbacks
):
    execution, stubber = start_with_stub(
        healing,
        SEND_OK,
        invocation("InProgress"),
        invocation("Failed", out="cleaning", err="rm: permission denied", code=1),
    )
    with stubber, django_capture_on_commit_callbacks(execute=True):
        assert execution_start(execution_id=execution.pk) is True
        assert execution_poll(execution_id=execution.pk) == 1.0
        assert execution_poll(execution_id=execution.pk) is None
    stubber.assert_no_pending_responses()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.command_id == COMMAND_ID and execution.polls == 2
    assert "permission denied" in execution.output
    assert "exit code 1" in execution.error
    incident = Incident.objects.get(pk=healing["incident"].pk)
    assert incident.status == "new" and incident.assigned_to == healing["technician"]
    assert AuditLog.objects.get(action="runbook_executed").details["result"] == "failed"


def test_command_timed_out_on_the_instance(healing, moto_endpoint):
    execution, stubber = start_with_stub(healing, SEND_OK, invocation("TimedOut"))
    with stubber:
        execution_start(execution_id=execution.pk)
        execution_poll(execution_id=execution.pk)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.TIMED_OUT


def test_no_final_status_within_the_timeout_cancels_and_times_out(healing, moto_endpoint):
    execution, stubber = start_with_stub(
        healing,
        SEND_OK,
        invocation("InProgress"),
        ("cancel_command", {}),
    )
    with stubber:
        execution_start(execution_id=execution.pk)
        RunbookExecution.objects.filter(pk=execution.pk).update(
            started_at=timezone.now() - timedelta(seconds=healing["runbook"].timeout_seconds + 61)
        )
        assert execution_poll(execution_id=execution.pk) is None
    stubber.assert_no_pending_responses()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.TIMED_OUT
    assert "cancelled" in execution.error


def test_health_check_failure_is_a_failure(healing, moto_endpoint):
    healing["runbook"].health_check_type = "http"
    healing["runbook"].health_check_url = "http://localhost/healthz"
    healing["runbook"].save()
    execution, stubber = start_with_stub(
        healing, SEND_OK, invocation("Failed", out="restarted\nAW_HEALTH_STATUS=503\n", code=1)
    )
    with stubber:
        execution_start(execution_id=execution.pk)
        execution_poll(execution_id=execution.pk)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.health_check_passed is False
    assert execution.error == "The health check failed."


def test_passing_health_check_is_recorded(healing, moto_endpoint):
    healing["runbook"].health_check_type = "http"
    healing["runbook"].health_check_url = "http://localhost/healthz"
    healing["runbook"].save()
    execution, stubber = start_with_stub(
        healing, SEND_OK, invocation("Success", out="AW_HEALTH_STATUS=200\n")
    )
    with stubber:
        execution_start(execution_id=execution.pk)
        execution_poll(execution_id=execution.pk)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS and execution.health_check_passed is True


@pytest.mark.parametrize(
    ("code", "message", "fragment"),
    [
        ("AccessDeniedException", "not authorized", "Access denied"),
        ("InvalidInstanceId", "Instances not in a valid state", "not managed by Systems Manager"),
    ],
)
def test_aws_errors_on_send_are_shown_in_plain_words(
    healing, moto_endpoint, code, message, fragment
):
    execution, stubber = start_with_stub(healing, ("send_command", (code, message)))
    with stubber:
        assert execution_start(execution_id=execution.pk) is False
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert fragment in execution.error
    assert not execution.command_id
    event = healing["incident"].events.filter(kind="runbook").last()
    assert fragment in event.text
    assert fragment in AuditLog.objects.get(action="runbook_executed").details["error"]


def test_throttled_send_is_retried_later_and_not_marked_sent(healing, moto_endpoint):
    from apps.tenants.aws import AwsError

    execution, stubber = start_with_stub(
        healing, ("send_command", ("ThrottlingException", "Rate exceeded"))
    )
    client = client_for(healing["company"], "ssm")
    client.meta.config.retries = {"max_attempts": 1}
    with stubber, pytest.raises(AwsError) as raised:
        execution_start(execution_id=execution.pk)
    assert raised.value.throttled
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.PENDING and execution.send_started_at is None


def test_invocation_not_there_yet_is_polled_again(healing, moto_endpoint):
    execution, stubber = start_with_stub(
        healing,
        SEND_OK,
        ("get_command_invocation", ("InvocationDoesNotExist", "")),
        invocation("Success"),
    )
    with stubber:
        execution_start(execution_id=execution.pk)
        assert execution_poll(execution_id=execution.pk) == 1.0
        assert execution_poll(execution_id=execution.pk) is None
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS


def test_send_command_is_never_sent_twice(healing, moto_endpoint):
    execution, stubber = start_with_stub(healing, SEND_OK)
    with stubber:
        assert execution_start(execution_id=execution.pk) is True
        # the task is delivered again (worker restart): nothing is sent a second time
        assert execution_start(execution_id=execution.pk) is True
    stubber.assert_no_pending_responses()


def test_worker_death_mid_send_never_resends(healing, moto_endpoint):
    execution, stubber = start_with_stub(healing)
    RunbookExecution.objects.filter(pk=execution.pk).update(send_started_at=timezone.now())
    with stubber:  # no response queued: any call would fail the test
        assert execution_start(execution_id=execution.pk) is False
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED and "not sent again" in execution.error


def test_company_without_aws_link_gets_guided_manual_steps(
    healing, django_capture_on_commit_callbacks
):
    healing["company"].aws_link.delete()
    with django_capture_on_commit_callbacks(execute=True):
        execution = execution_request(incident=healing["incident"], runbook=healing["runbook"])
    execution.refresh_from_db()
    assert execution.mode == "manual" and execution.status == ExecutionStatus.MANUAL
    event = healing["incident"].events.filter(kind="runbook").last()
    assert "1. sudo journalctl --vacuum-size=200M" in event.text
    assert Incident.objects.get(pk=healing["incident"].pk).assigned_to == healing["technician"]


def test_the_assignee_is_told_that_nothing_ran_when_steps_are_manual(
    healing, django_capture_on_commit_callbacks
):
    healing["company"].aws_link.delete()
    Incident.objects.filter(pk=healing["incident"].pk).update(assigned_to=healing["technician"])
    healing["incident"].refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        execution_request(incident=healing["incident"], runbook=healing["runbook"])
    told = Notification.objects.get(user=healing["technician"], kind="runbook")
    assert told.title.startswith("Runbook steps to do by hand")
    assert told.body.startswith("Nothing ran")
    assert "output" not in told.body
