"""The on-call page of a company (who is on call now and next, overrides) and the page an
acknowledge link opens.

An acknowledge link's GET only shows what it would do, with a button that POSTs: mail
scanners and link previews fetch GETs, and must not acknowledge anything.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.permissions import Action, can, get_scoped_or_404, visible_companies
from apps.common.errors import ValidationError
from apps.oncall.forms import OverrideForm
from apps.oncall.links import LinkRefused, ack_link_check, ack_link_use
from apps.oncall.selectors import schedules_now
from apps.oncall.services import override_create
from apps.tenants.models import Company


@login_required
@require_safe
def oncall_index(request: HttpRequest) -> HttpResponse:
    companies = list(visible_companies(request.user).order_by("name"))
    if len(companies) == 1:
        return redirect("oncall:company", slug=companies[0].slug)
    return render(request, "oncall/index.html", {"companies": companies})


def _company(request: HttpRequest, slug: str) -> Company:
    return get_scoped_or_404(
        Company.objects.filter(is_active=True), request.user, company_field="", slug=slug
    )


def _page(request: HttpRequest, company: Company, form: OverrideForm | None = None) -> dict:
    can_manage = can(request.user, Action.MANAGE_COMPANY, company)
    context: dict[str, Any] = {
        "company": company,
        "zone": company.tz,
        "schedules": schedules_now(company_id=company.pk, at=timezone.now()),
        "can_manage": can_manage,
    }
    if can_manage:
        context["form"] = form or OverrideForm(company=company)
    return context


@login_required
@require_safe
def oncall_company(request: HttpRequest, slug: str) -> HttpResponse:
    company = _company(request, slug)
    return render(request, "oncall/company.html", _page(request, company))


@login_required
@require_POST
def override_add(request: HttpRequest, slug: str) -> HttpResponse:
    """A company admin (or MSP admin) adds an override; times in the company's zone."""
    company = _company(request, slug)
    if not can(request.user, Action.MANAGE_COMPANY, company):
        return render(request, "oncall/forbidden.html", {"company": company}, status=403)
    form = OverrideForm(request.POST, company=company)
    with timezone.override(company.tz):
        valid = form.is_valid()
    if valid:
        data = form.cleaned_data
        try:
            override = override_create(
                schedule=data["schedule"],
                user=data["user"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                actor=request.user,
            )
        except ValidationError as error:
            for field, field_errors in error.fields.items():
                for message in field_errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, f"Saved: {override}.")
            return redirect("oncall:company", slug=company.slug)
    return render(request, "oncall/company.html", _page(request, company, form), status=400)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def ack_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET: what the link would acknowledge, and a button. POST: acknowledge as the link's
    user (no log-in). A refused link gets a page saying why, with its status."""
    try:
        if request.method == "POST":
            incident = ack_link_use(token=token)
            return render(request, "oncall/ack_done.html", {"incident": incident})
        view = ack_link_check(token=token)
    except LinkRefused as refused:
        return render(
            request,
            "oncall/ack_refused.html",
            {"reason": refused.message},
            status=refused.status_code,
        )
    return render(
        request, "oncall/ack_confirm.html", {"link": view.link, "incident": view.incident}
    )
