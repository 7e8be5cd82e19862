"""The real-time dashboard: metric cards, alert list, incident list. Each region is a
partial with its own URL, so a live signal re-fetches just that region with the viewer's
filters and scope; without JavaScript the filter forms reload the whole page."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import is_msp_admin
from apps.accounts.selection import companies_in_view, selected_company, visible_companies_list
from apps.alerts.choices import Severity
from apps.common.pagination import paginate
from apps.dashboard import selectors
from apps.dashboard.demo import start_storm_in_background
from apps.incidents.choices import IncidentStatus

STATUS_FILTERS = [("open", "Open"), *IncidentStatus.choices]


def _cards(request: HttpRequest, company_ids: list[int]) -> dict:
    period = request.GET.get("period", selectors.DEFAULT_PERIOD)
    if period not in selectors.PERIODS:
        period = selectors.DEFAULT_PERIOD
    return {
        "metrics": selectors.dashboard_metrics(
            company_ids=company_ids, since=selectors.period_start(period)
        ),
        "period": period,
        "periods": list(selectors.PERIODS),
    }


def _alerts(request: HttpRequest, company_ids: list[int]) -> dict:
    severity = request.GET.get("severity", "")
    query = request.GET.get("q", "").strip()[:200]
    alerts = selectors.alert_list(company_ids=company_ids, severity=severity, query=query)
    return {
        "alert_page": paginate(alerts, request, param="apage"),
        "severity": severity,
        "q": query,
        "severities": Severity.choices,
    }


def _incidents(request: HttpRequest, company_ids: list[int]) -> dict:
    status = request.GET.get("status", "open")
    if status not in dict(STATUS_FILTERS) and status != "":
        status = "open"
    incidents = selectors.incident_list(company_ids=company_ids, status=status)
    return {
        "incident_page": paginate(incidents, request, param="ipage"),
        "status": status,
        "statuses": STATUS_FILTERS,
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    company_ids = companies_in_view(request)
    context = {
        **_cards(request, company_ids),
        **_alerts(request, company_ids),
        **_incidents(request, company_ids),
    }
    context["demo_mode"] = settings.DEBUG
    return render(request, "dashboard/index.html", context)


@login_required
@require_POST
def demo_storm(request: HttpRequest) -> HttpResponse:
    """Demo mode only: an MSP admin starts an alert storm for the selected (or first) company."""
    if not (settings.DEBUG and is_msp_admin(request.user)):
        raise PermissionDenied("The demo storm is for MSP admins in the demo mode.")
    company = selected_company(request) or next(iter(visible_companies_list(request)), None)
    if company is None:
        messages.error(request, "Create a company first: the storm needs one to send alerts for.")
        return redirect("home")
    start_storm_in_background(company_id=company.pk)
    messages.success(
        request,
        f"An alert storm for {company.name} has started: watch alerts arrive, correlate into "
        "incidents and get scored over the next minute.",
    )
    return redirect("home")


@login_required
def cards(request: HttpRequest) -> HttpResponse:
    return render(
        request, "dashboard/partials/_cards.html", _cards(request, companies_in_view(request))
    )


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    return render(
        request, "dashboard/partials/_alerts.html", _alerts(request, companies_in_view(request))
    )


@login_required
def incidents(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/partials/_incidents.html",
        _incidents(request, companies_in_view(request)),
    )
