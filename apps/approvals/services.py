"""Deciding approval requests, and expiring the ones nobody decided within the hour."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.permissions import Action, can, is_msp_admin
from apps.approvals.models import ApprovalRequest, ApprovalStatus
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.common.errors import Conflict, PermissionDenied
from apps.incidents.choices import EventKind
from apps.incidents.models import IncidentEvent
from apps.notifications.live import company_changed
from apps.runbooks.choices import ExecutionStatus, Risk
from apps.runbooks.models import RunbookExecution
from apps.runbooks.services import dispatch_execute, hand_to_technician

MAX_NOTE = 2000


def refusal_reason(user: Any, approval: ApprovalRequest) -> str | None:
    """Why ``user`` may not decide ``approval``, or None when they may."""
    if approval.requested_by_id is not None and approval.requested_by_id == user.pk:
        return "You cannot decide your own request: another approver must."
    if approval.risk == Risk.HIGH:
        if not is_msp_admin(user):
            return "High-risk runbooks can only be approved by an MSP admin."
        return None
    if not can(user, Action.APPROVE_MEDIUM_RISK, approval.company_id):
        return "Only a Company Admin of this company or an MSP admin can decide this request."
    return None


def may_decide(user: Any, approval: ApprovalRequest) -> bool:
    return approval.status == ApprovalStatus.PENDING and refusal_reason(user, approval) is None


def approval_decide(
    *, approval_id: int, user: Any, approve: bool, note: str = ""
) -> ApprovalRequest:
    """Approve or reject; an expired request is marked expired (and stays so) and refused.
    A decision the approval rules refuse (own request, risk too high for the role) is
    audited, then raised."""
    with transaction.atomic():
        approval = _lock(approval_id)
        if approval.is_expired:
            _expire(approval)
            refused = None
        else:
            try:
                return _decide(approval, user=user, approve=approve, note=note)
            except PermissionDenied as error:
                refused = error
    if refused is None:
        raise Conflict("This request expired: approvals are valid for one hour.")
    _audit_refusal(approval, user=user, approve=approve, reason=refused.message)
    raise refused


def _audit_refusal(approval: ApprovalRequest, *, user: Any, approve: bool, reason: str) -> None:
    """A refused attempt, as ``approval_denied`` with ``refused`` true (a decision that
    went through never carries it)."""
    record(
        action=AuditAction.APPROVAL_DENIED,
        actor=user,
        company=approval.company,
        target=approval,
        details={
            "refused": True,
            "attempted": "approve" if approve else "reject",
            "reason": reason,
            "runbook": approval.execution.runbook.name,
            "risk": approval.risk,
            "incident": approval.execution.incident_id,
        },
    )


def _lock(approval_id: int) -> ApprovalRequest:
    return (
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("company", "execution__runbook", "execution__incident")
        .get(pk=approval_id)
    )


def _decide(approval: ApprovalRequest, *, user: Any, approve: bool, note: str) -> ApprovalRequest:
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(f"This request was already {approval.get_status_display().lower()}.")
    reason = refusal_reason(user, approval)
    if reason:
        raise PermissionDenied(reason)
    note = note.strip()[:MAX_NOTE]
    approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    approval.decided_by = user
    approval.decided_at = timezone.now()
    approval.note = note
    approval.save()
    execution = RunbookExecution.objects.select_for_update().get(pk=approval.execution_id)
    runbook = approval.execution.runbook
    verb = "approved" if approve else "rejected"
    IncidentEvent.objects.create(
        incident_id=execution.incident_id,
        kind=EventKind.RUNBOOK,
        actor=user,
        text=f"{user} {verb} running “{runbook.name}”." + (f" Note: {note}" if note else ""),
        details={"approval": approval.pk, "decision": verb},
    )
    record(
        action=AuditAction.APPROVAL_GRANTED if approve else AuditAction.APPROVAL_DENIED,
        actor=user,
        company=approval.company,
        target=approval,
        details={
            "runbook": runbook.name,
            "risk": approval.risk,
            "incident": execution.incident_id,
            "note": note,
        },
    )
    if approve:
        execution.status = ExecutionStatus.PENDING
        execution.save(update_fields=["status", "updated_at"])
        transaction.on_commit(lambda: dispatch_execute(execution.pk))
    else:
        execution.status = ExecutionStatus.REJECTED
        execution.finished_at = timezone.now()
        execution.save(update_fields=["status", "finished_at", "updated_at"])
        transaction.on_commit(
            lambda: hand_to_technician(incident_id=execution.incident_id, reason="rejected")
        )
    company_changed(approval.company_id)
    return approval


def _expire(approval: ApprovalRequest) -> None:
    approval.status = ApprovalStatus.EXPIRED
    approval.save(update_fields=["status"])
    RunbookExecution.objects.filter(pk=approval.execution_id).update(
        status=ExecutionStatus.EXPIRED, finished_at=timezone.now()
    )
    IncidentEvent.objects.create(
        incident_id=approval.execution.incident_id,
        kind=EventKind.RUNBOOK,
        text=f"Nobody approved “{approval.execution.runbook.name}” within an hour: "
        "the request expired.",
        details={"approval": approval.pk, "decision": "expired"},
    )
    record(
        action=AuditAction.APPROVAL_EXPIRED,
        company=approval.company,
        target=approval,
        details={
            "runbook": approval.execution.runbook.name,
            "incident": approval.execution.incident_id,
        },
    )
    incident_id = approval.execution.incident_id
    transaction.on_commit(lambda: hand_to_technician(incident_id=incident_id, reason="expired"))
    company_changed(approval.company_id)


def approvals_expire(*, now: datetime | None = None) -> int:
    """Expire every pending request past its hour; the incidents go to manual work."""
    now = now or timezone.now()
    count = 0
    ids = list(
        ApprovalRequest.objects.filter(
            status=ApprovalStatus.PENDING, expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    for approval_id in ids:
        with transaction.atomic():
            approval = (
                ApprovalRequest.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("company", "execution__runbook")
                .filter(pk=approval_id, status=ApprovalStatus.PENDING)
                .first()
            )
            if approval is not None:
                _expire(approval)
                count += 1
    return count
