"""The approval pages: the queue (pending requests, then the latest decisions), one
request with everything that would run, and the decision itself.

Everyone with a role sees the requests of their companies (a technician follows the ones
they asked for); the Approve / Reject form is shown to those the approval rules let decide.
Another company's request is a 404. A decision is a plain POST that redirects back to the
local ``next`` path (the incident page posts here too) or to the request, with a message;
a refusal (own request, risk too high for the role, expired, already decided) is a message,
never an error page. Approving needs no note; rejecting does, since the technician who
takes the incident over reads it.
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
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.permissions import get_scoped_or_404
from apps.accounts.selection import selected_company
from apps.approvals.models import ApprovalRequest, ApprovalStatus
from apps.approvals.selectors import (
    approval_decidable,
    approvals_decided,
    approvals_for_display,
    approvals_pending,
)
from apps.approvals.services import MAX_NOTE, approval_decide
from apps.common.errors import Conflict, PermissionDenied

APPROVE = "approve"
REJECT = "reject"
REJECT_NEEDS_NOTE = "Say why you reject it: the technician who takes the incident over reads it."


@dataclass(frozen=True)
class Row:
    approval: ApprovalRequest
    decidable: bool


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(APPROVE, "Approve"), (REJECT, "Reject")],
        error_messages={
            "required": "Choose Approve or Reject.",
            "invalid_choice": "Choose Approve or Reject.",
        },
    )
    note = forms.CharField(required=False, max_length=MAX_NOTE)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("decision") == REJECT and not data.get("note"):
            self.add_error("note", REJECT_NEEDS_NOTE)
        return data


def _local_path(url: str) -> str | None:
    """``url`` if it is a path on this site (never another host), else None."""
    if url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts=None):
        return url
    return None


def _row(request: HttpRequest, approval: ApprovalRequest) -> Row:
    return Row(
        approval=approval, decidable=approval_decidable(user=request.user, approval=approval)
    )


@login_required
@require_safe
def approval_list(request: HttpRequest) -> HttpResponse:
    company = selected_company(request)
    pending = [_row(request, a) for a in approvals_pending(user=request.user, company=company)]
    context = {
        "company": company,
        "pending": pending,
        "decidable_count": sum(row.decidable for row in pending),
        "decided": approvals_decided(user=request.user, company=company),
        "here": reverse("approvals:list"),
    }
    template = "approvals/list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#approval-lists"
    return render(request, template, context)


@login_required
@require_safe
def approval_detail(request: HttpRequest, pk: int) -> HttpResponse:
    approval = get_scoped_or_404(approvals_for_display(), request.user, pk=pk)
    return render(request, "approvals/detail.html", {"row": _row(request, approval)})


def _decided(approval: ApprovalRequest) -> str:
    incident = f"incident #{approval.execution.incident_id}"
    runbook = approval.execution.runbook.name
    if approval.status == ApprovalStatus.APPROVED:
        return f"Approved: “{runbook}” is queued for {incident}."
    return f"Rejected: {incident} goes to a technician for manual work, with your note."


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    approval = get_scoped_or_404(ApprovalRequest.objects.all(), request.user, pk=pk)
    back = _local_path(request.POST.get("next", "")) or reverse("approvals:detail", args=[pk])
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect(back)
    try:
        decided = approval_decide(
            approval_id=approval.pk,
            user=request.user,
            approve=form.cleaned_data["decision"] == APPROVE,
            note=form.cleaned_data["note"],
        )
    except (Conflict, PermissionDenied) as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, _decided(decided))
    return redirect(back)
