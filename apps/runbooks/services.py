"""Self-healing: request a runbook for an incident (through the approval gates), send it
with SSM, follow it to a final state, and resolve or hand over the incident.

Gates: a low-risk runbook marked auto-approve runs by itself when the company's policy
allows auto-approval and the company is not in a maintenance window. Any other automatic
match becomes an approval request (medium: a Company Admin or MSP Admin decides; high: an
MSP Admin). A person may run a low-risk runbook directly; a medium or high one from a
person is a request someone else must approve.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.permissions import msp_admins
from apps.accounts.roles import Role
from apps.approvals.models import ApprovalRequest
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.common.errors import Conflict
from apps.incidents.choices import OPEN_STATUSES, EventKind, IncidentStatus, Resolution
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import incident_auto_assign, incident_url
from apps.notifications.live import company_changed
from apps.notifications.models import Kind, Level
from apps.notifications.services import notify
from apps.runbooks import script
from apps.runbooks.choices import ACTIVE_STATUSES, ExecutionStatus, Mode, Risk
from apps.runbooks.choices import Kind as RunbookKind
from apps.runbooks.matching import best_match, fits_platform, platform_of, runbook_candidates
from apps.runbooks.models import INSTANCE_PLACEHOLDER, Runbook, RunbookExecution
from apps.tenants.aws import AwsError, call, client_for
from apps.tenants.models import AwsLink
from apps.tenants.services import companies_in_maintenance

APPROVAL_LIFETIME = timedelta(hours=1)
SEND_LOST_AFTER = timedelta(minutes=5)
TIMEOUT_GRACE = timedelta(seconds=60)
RUNNING_SSM_STATUSES = {"Pending", "InProgress", "Delayed"}
RUNNING_AUTOMATION_STATUSES = {
    "Pending",
    "InProgress",
    "Waiting",
    "Scheduled",
    "RunbookInProgress",
    "PendingApproval",
    "Approved",
    "Cancelling",
}
AUTOMATION_SUCCESS = {"Success", "CompletedWithSuccess"}
RUN_DOCUMENTS = {
    RunbookKind.SHELL: "AWS-RunShellScript",
    RunbookKind.POWERSHELL: "AWS-RunPowerShellScript",
}


def _event(execution: RunbookExecution, text: str, actor: Any = None, **details: Any) -> None:
    IncidentEvent.objects.create(
        incident_id=execution.incident_id,
        kind=EventKind.RUNBOOK,
        actor=actor,
        text=text,
        details={"execution": execution.pk, "runbook": execution.runbook.name, **details},
    )


def _mode_for(incident: Incident) -> tuple[str, str]:
    instance_id = incident.asset.instance_id if incident.asset else ""
    linked = AwsLink.objects.filter(company_id=incident.company_id).exclude(role_arn="").exists()
    return (Mode.SSM if linked and instance_id else Mode.MANUAL), instance_id


def _what_runs(runbook: Runbook, instance_id: str) -> dict[str, Any]:
    """The document, parameters and script an execution sends, fixed when it is requested
    so that the approver sees exactly what will run."""
    if runbook.kind == RunbookKind.AUTOMATION:
        parameters = {
            name: [
                v.replace(INSTANCE_PLACEHOLDER, instance_id)
                for v in (value if isinstance(value, list) else [value])
            ]
            for name, value in runbook.document_parameters.items()
        }
        return {"document_name": runbook.document_name, "parameters": parameters, "script": ""}
    return {
        "document_name": RUN_DOCUMENTS[runbook.kind],
        "parameters": {},
        "script": script.build_script(runbook),
    }


def approvers_of(approval: ApprovalRequest) -> list[User]:
    users = msp_admins()
    if approval.risk != Risk.HIGH:
        users = users | User.objects.filter(
            is_active=True,
            groups__name=Role.COMPANY_ADMIN.value,
            memberships__company_id=approval.company_id,
        )
    return [u for u in users.distinct() if u.pk != approval.requested_by_id]


# --- requesting ------------------------------------------------------------------------------
@transaction.atomic
def execution_request(
    *, incident: Incident, runbook: Runbook, actor: Any = None, reason: str = ""
) -> RunbookExecution:
    """Ask for ``runbook`` to heal ``incident``; ``actor`` None means the automatic check."""
    incident = (
        Incident.objects.select_for_update(of=("self",))
        .select_related("company", "asset")
        .get(pk=incident.pk)
    )
    if incident.status not in OPEN_STATUSES:
        raise Conflict("The incident is resolved: there is nothing left to heal.")
    if RunbookExecution.objects.filter(incident=incident, status__in=ACTIVE_STATUSES).exists():
        raise Conflict("A runbook is already running or waiting for approval on this incident.")
    company = incident.company
    automatic = actor is None
    unattended = runbook.risk == Risk.LOW and (
        not automatic or (runbook.auto_approve and company.auto_approve_low_risk)
    )
    platform = platform_of(incident.asset)
    if not fits_platform(runbook, platform):
        raise Conflict(
            f"“{runbook.name}” is a {runbook.get_kind_display()} runbook and "
            f"{incident.asset} runs {platform.title()}: choose a runbook for its platform."
        )
    mode, instance_id = _mode_for(incident)
    execution = RunbookExecution.objects.create(
        company=company,
        incident=incident,
        runbook=runbook,
        status=ExecutionStatus.PENDING if unattended else ExecutionStatus.AWAITING_APPROVAL,
        mode=mode,
        automatic=automatic,
        requested_by=actor,
        instance_id=instance_id,
        kind=runbook.kind,
        **_what_runs(runbook, instance_id),
    )
    if mode == Mode.SSM and incident.asset.agent_unreachable:
        _event(
            execution,
            f"Warning: Systems Manager last saw the agent of {incident.asset} as "
            f"{incident.asset.ssm_ping_status}; the run may not reach it.",
            ping_status=incident.asset.ssm_ping_status,
        )
    if unattended:
        _event(
            execution,
            f"Runbook “{runbook.name}” queued ({runbook.get_risk_display()} risk).",
            actor,
        )
        transaction.on_commit(lambda: dispatch_execute(execution.pk))
    else:
        approval = ApprovalRequest.objects.create(
            company=company,
            execution=execution,
            risk=runbook.risk,
            requested_by=actor,
            reason=reason[:500],
            expires_at=timezone.now() + APPROVAL_LIFETIME,
        )
        _event(
            execution,
            f"Approval requested to run “{runbook.name}” ({runbook.get_risk_display()} risk).",
            actor,
            approval=approval.pk,
        )
        record(
            action=AuditAction.APPROVAL_REQUESTED,
            actor=actor,
            company=company,
            target=approval,
            details={"runbook": runbook.name, "risk": runbook.risk, "incident": incident.pk},
        )
        notify(
            users=approvers_of(approval),
            kind=Kind.APPROVAL,
            level=Level.WARNING,
            title=f"Approval needed: {runbook.name}",
            body=f"{company.name} · {incident.title} · {runbook.get_risk_display()} risk",
            url=f"/approvals/{approval.pk}/",
            company=company,
        )
    company_changed(company.pk)
    return execution


def autoheal_incidents(*, incident_ids: list[int]) -> set[int]:
    """The automatic check for newly opened incidents (of one or more companies). Returns
    the ids now handled by a runbook (running or waiting for approval), which are not
    assigned yet. Runbooks and maintenance windows are read once for all the companies, so
    a storm that opens many incidents costs a few queries, not a few per incident or
    company."""
    handled: set[int] = set()
    incidents = Incident.objects.filter(
        pk__in=incident_ids, in_maintenance=False, status__in=OPEN_STATUSES
    ).select_related("company", "asset")
    by_company: dict[int, list[Incident]] = {}
    for incident in incidents:
        by_company.setdefault(incident.company_id, []).append(incident)
    if not by_company:
        return handled
    candidates = runbook_candidates(company_ids=by_company)
    paused = companies_in_maintenance(
        companies=[found[0].company for pk, found in by_company.items() if candidates[pk]]
    )
    for company_id, company_incidents in by_company.items():
        if not candidates[company_id] or company_id in paused:
            continue
        for incident in company_incidents:
            runbook = best_match(
                candidates[company_id],
                signature=incident.signature,
                platform=platform_of(incident.asset),
            )
            if runbook is None:
                continue
            try:
                execution_request(incident=incident, runbook=runbook)
            except Conflict:
                continue
            handled.add(incident.pk)
    return handled


def dispatch_execute(execution_id: int) -> None:
    from apps.runbooks.tasks import runbook_execute

    runbook_execute.delay(execution_id)


def _dispatch_poll(execution_id: int, delay: float) -> None:
    from apps.runbooks.tasks import runbook_poll

    runbook_poll.apply_async((execution_id,), countdown=delay)


# --- executing -------------------------------------------------------------------------------
def execution_start(*, execution_id: int) -> bool:
    """Send the command once. Returns True when polling should follow."""
    with transaction.atomic():
        execution = (
            RunbookExecution.objects.select_for_update(of=("self",))
            .select_related("runbook", "company", "incident")
            .get(pk=execution_id)
        )
        if execution.status != ExecutionStatus.PENDING:
            return execution.status == ExecutionStatus.IN_PROGRESS
        if execution.mode == Mode.MANUAL:
            _finish_manual(execution)
            return False
        if execution.send_started_at is not None:
            _finish(
                execution,
                ExecutionStatus.FAILED,
                error="The worker stopped while sending the command; it was not sent again. "
                "Check Systems Manager's command history before retrying.",
            )
            return False
        now = timezone.now()
        execution.send_started_at = now
        execution.started_at = now
        execution.status = ExecutionStatus.IN_PROGRESS
        execution.save(update_fields=["send_started_at", "started_at", "status", "updated_at"])
        _event(
            execution, f"Sending “{execution.runbook.name}” to {execution.instance_id} with SSM."
        )
    try:
        command_id, ssm_status = _send(execution)
    except AwsError as error:
        if error.throttled:
            RunbookExecution.objects.filter(pk=execution.pk).update(
                status=ExecutionStatus.PENDING, send_started_at=None, started_at=None
            )
            raise
        with transaction.atomic():
            _finish(_locked(execution.pk), ExecutionStatus.FAILED, error=error.message)
        return False
    RunbookExecution.objects.filter(pk=execution.pk, command_id="").update(
        command_id=command_id, ssm_status=ssm_status
    )
    company_changed(execution.company_id)
    return True


def _send(execution: RunbookExecution) -> tuple[str, str]:
    """Send the command, or start the Automation execution: (its id, its first status)."""
    ssm = client_for(execution.company, "ssm")
    timeout = execution.runbook.timeout_seconds
    if execution.kind == RunbookKind.AUTOMATION:
        response = call(
            ssm,
            "start_automation_execution",
            doing=f"start the Automation document {execution.document_name}",
            DocumentName=execution.document_name,
            Parameters=execution.parameters,
        )
        return response["AutomationExecutionId"], "Pending"
    response = call(
        ssm,
        "send_command",
        doing=f"send the command to {execution.instance_id}",
        InstanceIds=[execution.instance_id],
        DocumentName=execution.document_name,
        Parameters={
            "commands": execution.script.splitlines(),
            "executionTimeout": [str(timeout)],
        },
        TimeoutSeconds=max(30, min(timeout, 2592000)),
        Comment=f"Alert Whisperer incident {execution.incident_id} execution {execution.pk}"[:100],
    )
    return response["Command"]["CommandId"], response["Command"].get("Status", "Pending")


def _read(execution: RunbookExecution) -> tuple[str, str, str]:
    """The run's (status, output, exit code) now, as Systems Manager reports it."""
    ssm = client_for(execution.company, "ssm")
    if execution.kind == RunbookKind.AUTOMATION:
        found = call(
            ssm,
            "get_automation_execution",
            doing=f"read the status of Automation execution {execution.command_id}",
            AutomationExecutionId=execution.command_id,
        )["AutomationExecution"]
        return found.get("AutomationExecutionStatus", ""), _step_outputs(found), ""
    invocation = call(
        ssm,
        "get_command_invocation",
        doing=f"read the status of command {execution.command_id}",
        CommandId=execution.command_id,
        InstanceId=execution.instance_id,
    )
    output = (invocation.get("StandardOutputContent") or "") + (
        "\n--- stderr ---\n" + invocation["StandardErrorContent"]
        if invocation.get("StandardErrorContent")
        else ""
    )
    return invocation.get("Status", ""), output, str(invocation.get("ResponseCode", "?"))


def _step_outputs(automation: dict[str, Any]) -> str:
    """Each step of an Automation execution: its status, outputs and failure."""
    lines = []
    for number, step in enumerate(automation.get("StepExecutions", []), 1):
        lines.append(
            f"{number}. {step.get('StepName', '?')} ({step.get('Action', '?')}): "
            f"{step.get('StepStatus', '?')}"
        )
        for name, values in (step.get("Outputs") or {}).items():
            lines.append(f"   {name}: {', '.join(values)}")
        if step.get("FailureMessage"):
            lines.append(f"   {step['FailureMessage']}")
    if automation.get("FailureMessage"):
        lines.append(automation["FailureMessage"])
    return "\n".join(lines)


def _locked(execution_id: int) -> RunbookExecution:
    return (
        RunbookExecution.objects.select_for_update(of=("self",))
        .select_related("runbook", "company", "incident")
        .get(pk=execution_id)
    )


def execution_poll(*, execution_id: int) -> float | None:
    """Read the command's status once. Returns the delay before the next poll, or None
    when the execution is final."""
    execution = RunbookExecution.objects.select_related("runbook", "company").get(pk=execution_id)
    if execution.status != ExecutionStatus.IN_PROGRESS:
        return None
    now = timezone.now()
    if not execution.command_id:
        if execution.send_started_at and now - execution.send_started_at > SEND_LOST_AFTER:
            with transaction.atomic():
                _finish(
                    _locked(execution.pk),
                    ExecutionStatus.FAILED,
                    error="SendCommand never answered; the command was not sent again.",
                )
            return None
        return 2.0
    RunbookExecution.objects.filter(pk=execution.pk).update(polls=execution.polls + 1)
    delay = min(2.0 ** min(execution.polls, 5), 30.0)
    deadline = execution.started_at + timedelta(seconds=execution.runbook.timeout_seconds)
    try:
        status, output, exit_code = _read(execution)
    except AwsError as error:
        if error.throttled or error.aws_code == "InvocationDoesNotExist":
            if now > deadline + TIMEOUT_GRACE:
                return _timed_out(execution)
            return delay
        with transaction.atomic():
            _finish(_locked(execution.pk), ExecutionStatus.FAILED, error=error.message)
        return None
    output = script.clip(output)
    RunbookExecution.objects.filter(pk=execution.pk).update(ssm_status=status, output=output)
    if status != execution.ssm_status or output != execution.output:
        company_changed(execution.company_id)
    automation = execution.kind == RunbookKind.AUTOMATION
    if status in (RUNNING_AUTOMATION_STATUSES if automation else RUNNING_SSM_STATUSES):
        if now > deadline + TIMEOUT_GRACE:
            return _timed_out(execution)
        return delay
    with transaction.atomic():
        locked = _locked(execution.pk)
        locked.output = output
        locked.ssm_status = status
        if automation:
            _finish_automation(locked, status)
        elif status == "Success":
            health = script.health_check_result(locked.runbook, output)
            if health is False:
                _finish(
                    locked, ExecutionStatus.FAILED, error="The health check failed.", health=False
                )
            else:
                _finish(locked, ExecutionStatus.SUCCESS, health=health)
        elif status == "TimedOut":
            _finish(
                locked, ExecutionStatus.TIMED_OUT, error="The command timed out on the instance."
            )
        else:
            health = script.health_check_result(locked.runbook, output)
            reason = (
                "The health check failed."
                if health is False
                else f"The command ended with status {status} (exit code {exit_code})."
            )
            _finish(locked, ExecutionStatus.FAILED, error=reason, health=health)
    return None


def _finish_automation(execution: RunbookExecution, status: str) -> None:
    if status in AUTOMATION_SUCCESS:
        _finish(execution, ExecutionStatus.SUCCESS)
    elif status == "TimedOut":
        _finish(execution, ExecutionStatus.TIMED_OUT, error="The Automation execution timed out.")
    else:
        _finish(
            execution,
            ExecutionStatus.FAILED,
            error=f"The Automation execution ended with status {status}.",
        )


def _timed_out(execution: RunbookExecution) -> None:
    ssm = client_for(execution.company, "ssm")
    with contextlib.suppress(AwsError):  # the timeout stands whether or not the cancel lands
        if execution.kind == RunbookKind.AUTOMATION:
            call(
                ssm,
                "stop_automation_execution",
                doing=f"stop Automation execution {execution.command_id}",
                AutomationExecutionId=execution.command_id,
                Type="Cancel",
            )
        else:
            call(
                ssm,
                "cancel_command",
                doing=f"cancel command {execution.command_id}",
                CommandId=execution.command_id,
                InstanceIds=[execution.instance_id],
            )
    with transaction.atomic():
        _finish(
            _locked(execution.pk),
            ExecutionStatus.TIMED_OUT,
            error=f"No final status after {execution.runbook.timeout_seconds} s; the command "
            "was cancelled.",
        )
    return None


def _finish(
    execution: RunbookExecution, status: str, *, error: str = "", health: bool | None = None
) -> None:
    """Record the final state (inside the caller's transaction), then resolve the incident
    as self-healed or hand it to a technician with the output."""
    now = timezone.now()
    execution.status = status
    execution.error = error
    execution.health_check_passed = health
    execution.finished_at = now
    execution.save()
    duration = execution.duration_seconds
    result = {
        "result": status,
        "command_id": execution.command_id,
        "duration_seconds": round(duration, 1) if duration is not None else None,
        "instance_id": execution.instance_id,
    }
    text = f"Runbook “{execution.runbook.name}”: {execution.get_status_display()}"
    if error:
        text += f" — {error}"
    _event(execution, text, **result)
    record(
        action=AuditAction.RUNBOOK_EXECUTED,
        actor=execution.requested_by,
        company=execution.company,
        target=execution,
        details={
            "runbook": execution.runbook.name,
            "incident": execution.incident_id,
            **result,
            "error": error,
        },
    )
    if status == ExecutionStatus.SUCCESS:
        _resolve_self_healed(execution, now)
    else:
        transaction.on_commit(
            lambda: hand_to_technician(incident_id=execution.incident_id, reason="failed")
        )
    company_changed(execution.company_id)


def _finish_manual(execution: RunbookExecution) -> None:
    execution.status = ExecutionStatus.MANUAL
    execution.finished_at = timezone.now()
    execution.save()
    actions = execution.runbook.actions
    if execution.kind == RunbookKind.AUTOMATION:
        parameters = ", ".join(f"{k}={','.join(v)}" for k, v in execution.parameters.items())
        actions = [
            f"Start the Automation document {execution.document_name} in the AWS console"
            + (f" with {parameters}" if parameters else "")
            + "."
        ]
    steps = "\n".join(f"{n}. {a}" for n, a in enumerate(actions, 1))
    _event(
        execution,
        f"“{execution.runbook.name}” has no AWS link or instance id to run on: follow these "
        f"steps by hand.\n{steps}",
        steps=actions,
    )
    record(
        action=AuditAction.RUNBOOK_EXECUTED,
        actor=execution.requested_by,
        company=execution.company,
        target=execution,
        details={
            "runbook": execution.runbook.name,
            "incident": execution.incident_id,
            "result": "manual",
        },
    )
    transaction.on_commit(
        lambda: hand_to_technician(incident_id=execution.incident_id, reason="manual")
    )
    company_changed(execution.company_id)


def _resolve_self_healed(execution: RunbookExecution, now) -> None:
    incident = Incident.objects.select_for_update().get(pk=execution.incident_id)
    if incident.status not in OPEN_STATUSES:
        return
    previous = incident.status
    incident.status = IncidentStatus.RESOLVED
    incident.resolution = Resolution.SELF_HEALED
    incident.resolved_at = now
    incident.accepting = False
    incident.save(update_fields=["status", "resolution", "resolved_at", "accepting", "updated_at"])
    IncidentEvent.objects.create(
        incident=incident,
        kind=EventKind.STATUS,
        text=f"Resolved: self-healed by “{execution.runbook.name}”.",
        details={"from": previous, "to": "resolved", "resolution": Resolution.SELF_HEALED},
    )


# What the assignee is told when a runbook hands an incident back, by what happened: a
# title and a body that say whether anything ran.
HAND_BACK_WORDING = {
    "failed": ("Runbook did not heal", "It ran and failed; its output is on the incident."),
    "manual": (
        "Runbook steps to do by hand",
        "Nothing ran: there is no AWS link or instance id. The steps are on the incident; "
        "close them there as fixed or not fixed.",
    ),
    "rejected": ("Runbook rejected", "Nothing ran: the approver rejected the runbook."),
    "expired": ("Runbook not approved", "Nothing ran: nobody approved it within an hour."),
}


def hand_to_technician(*, incident_id: int, reason: str) -> None:
    """After a failed, manual, rejected or expired runbook (``reason``, a key of
    HAND_BACK_WORDING): an on-call technician takes over (the assignee, if there is one
    already, is told what happened)."""
    incident = Incident.objects.select_related("company", "assigned_to").get(pk=incident_id)
    if incident.status not in OPEN_STATUSES:
        return
    if incident.assigned_to is None:
        incident_auto_assign(incident_id=incident_id)
        return
    title, body = HAND_BACK_WORDING[reason]
    notify(
        users=[incident.assigned_to],
        kind=Kind.RUNBOOK,
        level=Level.WARNING,
        title=f"{title}: {incident.title}",
        body=body,
        url=incident_url(incident.pk),
        company=incident.company,
    )
