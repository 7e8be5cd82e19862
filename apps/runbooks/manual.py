"""Closing a manual execution: a runbook that could not run by itself (no AWS link or no
instance id) hands its steps to a person, who says afterwards whether they fixed it.

Fixed: the execution succeeds and the incident is resolved by that person, with their
note. Not fixed: the execution fails and the incident stays open with the person's note
on its timeline, to be worked (or another runbook tried). Either way it is audited.
"""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import User
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.common.errors import Conflict
from apps.incidents.choices import EventKind, IncidentStatus
from apps.incidents.models import IncidentEvent
from apps.incidents.services import incident_status_change
from apps.notifications.live import company_changed
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import RunbookExecution

NOT_FIXED = "The steps were followed by hand and did not fix it."


@transaction.atomic
def manual_execution_close(
    *, execution_id: int, fixed: bool, note: str, actor: User
) -> RunbookExecution:
    execution = (
        RunbookExecution.objects.select_for_update(of=("self",))
        .select_related("runbook", "incident", "company")
        .get(pk=execution_id)
    )
    if execution.status != ExecutionStatus.MANUAL:
        raise Conflict("These steps were already closed.")
    note = note.strip()
    name = execution.runbook.name
    execution.status = ExecutionStatus.SUCCESS if fixed else ExecutionStatus.FAILED
    execution.error = "" if fixed else NOT_FIXED
    execution.save(update_fields=["status", "error", "updated_at"])
    outcome = "fixed it" if fixed else "did not fix it"
    IncidentEvent.objects.create(
        incident_id=execution.incident_id,
        kind=EventKind.RUNBOOK,
        actor=actor,
        text=f"“{name}” followed by hand: {outcome}." + (f"\n{note}" if note else ""),
        details={"execution": execution.pk, "runbook": name, "result": execution.status},
    )
    record(
        action=AuditAction.RUNBOOK_EXECUTED,
        actor=actor,
        company=execution.company,
        target=execution,
        details={
            "runbook": name,
            "incident": execution.incident_id,
            "result": "manual_fixed" if fixed else "manual_not_fixed",
            "note": note,
        },
    )
    if fixed and execution.incident.is_open:
        incident_status_change(
            incident_id=execution.incident_id,
            status=IncidentStatus.RESOLVED,
            note=note or f"Fixed by following “{name}” by hand.",
            actor=actor,
        )
    company_changed(execution.company_id)
    return execution
