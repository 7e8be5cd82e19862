"""The patch compliance page: a card per company in view (figures, environments, trend, the
age of the data, the last sync error, or how to link AWS) and the instance table.

Everyone who sees a company sees its compliance; its company admins and MSP admins
(``Action.MANAGE_COMPANY``) may also sync it with AWS. The card and the table are partials
with their own URLs: the card polls itself while a sync runs, the table's filters swap it in
place; without JavaScript the forms reload the whole page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.permissions import Action, can, get_scoped_or_404
from apps.accounts.selection import companies_in_view, visible_companies_list
from apps.common.pagination import paginate
from apps.compliance import selectors
from apps.compliance.exports import latest_exports
from apps.compliance.models import Environment
from apps.compliance.tasks import queue_sync, syncs_running
from apps.tenants.models import Company

PER_PAGE = 25
NON_COMPLIANT = "noncompliant"


def _companies_in_view(request: HttpRequest) -> list[Company]:
    ids = set(companies_in_view(request))
    return [c for c in visible_companies_list(request) if c.pk in ids]


def _visible_company(request: HttpRequest, slug: str) -> Company:
    return get_scoped_or_404(
        Company.objects.filter(is_active=True), request.user, company_field="", slug=slug
    )


def _cards(request: HttpRequest, companies: list[Company]) -> list[dict[str, Any]]:
    running = syncs_running([c.pk for c in companies])
    exports = latest_exports(company_ids=[c.pk for c in companies])
    return [
        {
            "c": overview,
            "can_sync": can(request.user, Action.MANAGE_COMPANY, overview.company),
            "syncing": overview.company.pk in running,
            "export": exports.get(overview.company.pk),
        }
        for overview in selectors.compliance_overview(companies=companies, now=timezone.now())
    ]


def _instances(request: HttpRequest, company_ids: list[int]) -> dict[str, Any]:
    status = request.GET.get("status", "")
    environment = request.GET.get("environment", "")
    rows = selectors.instance_list(
        company_ids=company_ids, non_compliant=status == NON_COMPLIANT, environment=environment
    )
    return {
        "instance_page": paginate(rows, request, per_page=PER_PAGE),
        "status": status if status == NON_COMPLIANT else "",
        "environment": environment if environment in Environment.values else "",
        "environments": Environment.choices,
        "show_company": len(company_ids) > 1,
    }


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    companies = _companies_in_view(request)
    context = {
        "cards": _cards(request, companies),
        **_instances(request, [c.pk for c in companies]),
    }
    return render(request, "compliance/index.html", context)


@login_required
@require_GET
def instances(request: HttpRequest) -> HttpResponse:
    company_ids = [c.pk for c in _companies_in_view(request)]
    return render(request, "compliance/partials/_instances.html", _instances(request, company_ids))


@login_required
@require_GET
def card(request: HttpRequest, slug: str) -> HttpResponse:
    company = _visible_company(request, slug)
    return render(
        request, "compliance/partials/_company.html", {"card": _cards(request, [company])[0]}
    )


@login_required
@require_POST
def sync(request: HttpRequest, slug: str) -> HttpResponse:
    company = _visible_company(request, slug)
    if not can(request.user, Action.MANAGE_COMPANY, company):
        raise PermissionDenied(f"Only {company.name}'s admins and MSP admins can sync with AWS.")
    if queue_sync(company_id=company.pk, actor_id=request.user.pk):
        messages.success(
            request, f"Syncing {company.name} with AWS: its figures update when the sync ends."
        )
    else:
        messages.info(request, f"A sync of {company.name} with AWS is already running.")
    return redirect("compliance:index")
