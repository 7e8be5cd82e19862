"""Reads for the approval pages: the requests a user may see (their companies' only), with
everything a row shows in the same query."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Coalesce

from apps.accounts.permissions import scope
from apps.approvals.models import ApprovalRequest, ApprovalStatus
from apps.approvals.services import may_decide
from apps.tenants.models import Company

DECIDED_SHOWN = 50


def approvals_for_display() -> QuerySet[ApprovalRequest]:
    """Every request with what a page shows of it; scope it before use."""
    return ApprovalRequest.objects.select_related(
        "company",
        "execution__runbook",
        "execution__incident__asset",
        "requested_by",
        "decided_by",
    )


def approval_decidable(*, user: Any, approval: ApprovalRequest) -> bool:
    """Whether ``user`` gets the Approve / Reject form: the request is still open (not
    past its hour) and the approval rules let them decide it."""
    return not approval.is_expired and may_decide(user, approval)


def approvals_visible(*, user: Any, company: Company | None = None) -> QuerySet[ApprovalRequest]:
    """Requests of the companies ``user`` may see (narrowed to ``company`` if given)."""
    approvals = scope(approvals_for_display(), user)
    if company is not None:
        approvals = approvals.filter(company=company)
    return approvals


def approvals_pending(*, user: Any, company: Company | None = None) -> list[ApprovalRequest]:
    """Undecided requests, the one expiring soonest first (those past their hour stay
    until the minutely sweep marks them expired)."""
    return list(
        approvals_visible(user=user, company=company)
        .filter(status=ApprovalStatus.PENDING)
        .order_by("expires_at", "pk")
    )


def approvals_decided(
    *, user: Any, company: Company | None = None, limit: int = DECIDED_SHOWN
) -> list[ApprovalRequest]:
    """The latest approved, rejected or expired requests (an expired one dates from its
    expiry: nobody decided it)."""
    return list(
        approvals_visible(user=user, company=company)
        .exclude(status=ApprovalStatus.PENDING)
        .order_by(Coalesce("decided_at", "expires_at").desc(), "-pk")[:limit]
    )
