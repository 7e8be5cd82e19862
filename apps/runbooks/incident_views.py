"""The incident page's runbook panel: the runbooks that match the incident, its executions
(live: the panel re-fetches itself on the live signal), the approval an execution waits
for, and running a runbook by hand through the same gates as the automatic check.

Running, and closing manual steps as fixed or not fixed, are plain POSTs (a redirect back
to the incident with a message); with htmx they post in place and get the panel back, then
ask the other live regions to refresh.
Approving and rejecting post to the approvals app, which redirects back here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import trigger_client_event

from apps.accounts.permissions import Action, can, get_scoped_or_404
from apps.approvals.models import ApprovalRequest
from apps.approvals.selectors import approval_decidable
from apps.common.errors import Conflict
from apps.incidents.models import Incident
from apps.runbooks.choices import ACTIVE_STATUSES, ExecutionStatus, Mode, Risk
from apps.runbooks.manual import manual_execution_close
from apps.runbooks.models import Runbook, RunbookExecution
from apps.runbooks.selectors import incident_executions, runbooks_applicable
from apps.runbooks.services import execution_request

PANEL = "incidents/partials/_runbooks.html"
EXECUTIONS_SHOWN = 20
MAX_REASON = 500


@dataclass(frozen=True)
class ExecutionRow:
    execution: RunbookExecution
    approval: ApprovalRequest | None
    decidable: bool


class RunForm(forms.Form):
    runbook = forms.TypedChoiceField(
        coerce=int,
        error_messages={
            "required": "Choose a runbook to run.",
            "invalid_choice": "That runbook no longer applies to this incident (it was "
            "disabled or changed): choose one from the list.",
        },
    )
    reason = forms.CharField(required=False, max_length=MAX_REASON)

    def __init__(self, *args: Any, runbooks: list[Runbook], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runbooks = {runbook.pk: runbook for runbook in runbooks}
        self.fields["runbook"].choices = [(pk, r.name) for pk, r in self.runbooks.items()]

    @property
    def chosen(self) -> Runbook:
        return self.runbooks[self.cleaned_data["runbook"]]


def _incident(request: HttpRequest, pk: int) -> Incident:
    return get_scoped_or_404(
        Incident.objects.select_related("company", "asset"), request.user, pk=pk
    )


def _panel_url(incident: Incident) -> str:
    return reverse("incidents:detail", args=[incident.pk]) + "#incident-runbooks"


def _row(user: Any, execution: RunbookExecution) -> ExecutionRow:
    approval = getattr(execution, "approval", None)
    return ExecutionRow(
        execution=execution,
        approval=approval,
        decidable=approval is not None and approval_decidable(user=user, approval=approval),
    )


def runbook_panel(
    request: HttpRequest, incident: Incident, *, notice: str = "", error: str = ""
) -> dict[str, Any]:
    """The panel's context: matching runbooks (the suggested one first), the latest
    executions, and what ``request.user`` may do about them."""
    executions = incident_executions(incident=incident, limit=EXECUTIONS_SHOWN + 1)
    busy = any(execution.status in ACTIVE_STATUSES for execution in executions)
    may_run = can(request.user, Action.EXECUTE_RUNBOOK, incident.company)
    return {
        "panel_loaded": True,
        "incident": incident,
        "runbooks": runbooks_applicable(incident=incident),
        "rows": [_row(request.user, e) for e in executions[:EXECUTIONS_SHOWN]],
        "more_executions": len(executions) > EXECUTIONS_SHOWN,
        "busy": busy,
        "may_run": may_run,
        "can_run": may_run and incident.is_open and not busy,
        "can_close": can(request.user, Action.UPDATE_INCIDENT, incident.company),
        "back": _panel_url(incident),
        "notice": notice,
        "error": error,
    }


@login_required
@require_safe
def incident_runbooks(request: HttpRequest, pk: int) -> HttpResponse:
    """The panel alone: what the incident page loads and re-fetches on the live signal."""
    incident = _incident(request, pk)
    return render(request, PANEL, runbook_panel(request, incident))


def _queued(execution: RunbookExecution) -> str:
    name = execution.runbook.name
    if execution.status == ExecutionStatus.AWAITING_APPROVAL:
        approvers = (
            "MSP admins"
            if execution.runbook.risk == Risk.HIGH
            else f"Company Admins of {execution.company.name} and MSP admins"
        )
        return (
            f"Approval requested to run “{name}” ({execution.runbook.get_risk_display()} "
            f"risk): {approvers} have been notified. The request expires in an hour."
        )
    if execution.mode == Mode.MANUAL:
        return (
            f"“{name}” cannot run by itself here (no AWS link or no instance id): its steps "
            "are below, to follow by hand."
        )
    return f"“{name}” is queued to run on {execution.instance_id} with AWS Systems Manager."


def _run(request: HttpRequest, incident: Incident) -> tuple[str, str]:
    """Request the chosen runbook; returns (success message, error message)."""
    if not can(request.user, Action.EXECUTE_RUNBOOK, incident.company):
        return "", "Your role does not let you run runbooks on this incident."
    form = RunForm(request.POST, runbooks=runbooks_applicable(incident=incident))
    if not form.is_valid():
        return "", " ".join(message for errors in form.errors.values() for message in errors)
    try:
        execution = execution_request(
            incident=incident,
            runbook=form.chosen,
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
    except Conflict as conflict:
        return "", conflict.message
    return _queued(execution), ""


@login_required
@require_POST
def incident_runbook_run(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(request, pk)
    notice, error = _run(request, incident)
    if request.htmx:
        fresh = _incident(request, pk)
        response = render(request, PANEL, runbook_panel(request, fresh, notice=notice, error=error))
        return trigger_client_event(response, "live-refresh") if notice else response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect(_panel_url(incident))


class CloseForm(forms.Form):
    result = forms.ChoiceField(
        choices=[("fixed", "Fixed"), ("not_fixed", "Not fixed")],
        error_messages={"required": "Say whether the steps fixed it."},
    )
    note = forms.CharField(required=False, max_length=MAX_REASON)


def _close(request: HttpRequest, incident: Incident, execution_id: int) -> tuple[str, str]:
    """Close the incident's manual execution; returns (success message, error message)."""
    if not can(request.user, Action.UPDATE_INCIDENT, incident.company):
        return "", "Your role does not let you close runbook steps on this incident."
    execution = incident.executions.filter(pk=execution_id).first()
    if execution is None:
        return "", "That execution is not on this incident."
    form = CloseForm(request.POST)
    if not form.is_valid():
        return "", " ".join(message for errors in form.errors.values() for message in errors)
    fixed = form.cleaned_data["result"] == "fixed"
    try:
        manual_execution_close(
            execution_id=execution.pk,
            fixed=fixed,
            note=form.cleaned_data["note"],
            actor=request.user,
        )
    except Conflict as conflict:
        return "", conflict.message
    if fixed:
        return "Marked as fixed by hand: the incident is resolved.", ""
    return "Marked as not fixed: the incident stays open for you to work on.", ""


@login_required
@require_POST
def incident_execution_close(request: HttpRequest, pk: int, execution_pk: int) -> HttpResponse:
    incident = _incident(request, pk)
    notice, error = _close(request, incident, execution_pk)
    if request.htmx:
        fresh = _incident(request, pk)
        response = render(request, PANEL, runbook_panel(request, fresh, notice=notice, error=error))
        return trigger_client_event(response, "live-refresh") if notice else response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect(_panel_url(incident))
