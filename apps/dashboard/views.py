"""The real-time dashboard: metric cards, alert list, incident list. Each region is a
partial with its own URL, so a live signal re-fetches just that region with the viewer's
filters and scope; without JavaScript the filter forms reload the whole page.

The page's state (period, alert filters and cursor, incident filter and page) is the query
string: every region re-fetches itself with all of it, so a live update keeps the page shown,
and each partial answer puts the state back in the address bar (HX-Replace-Url).

The alert list pages by keyset (``acursor``, apps/common/keyset.py): older and newer pages
and the oldest cost the same at ten million alerts. The page numbers it had before
(``apage``) are gone; such a link shows the newest alerts."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import Action, can, role_of
from apps.accounts.selection import companies_in_view, selected_company, visible_companies_list
from apps.alerts.choices import Severity
from apps.common.keyset import OLDEST, BadCursor, keyset_paginate
from apps.common.pagination import paginate
from apps.dashboard import selectors
from apps.dashboard.demo import start_storm_in_background
from apps.incidents.choices import IncidentStatus
from apps.incidents.filters import QUERY_MAX, IncidentFilters
from apps.incidents.selectors import incident_search

STATUS_FILTERS = [("open", "Open"), *IncidentStatus.choices]
STATE_KEYS = ("period", "severity", "q", "acursor", "status", "iq", "ipage")
PAGE_KEYS = ("ipage",)


def _state(request: HttpRequest, **changes: str) -> str:
    """The page's state as a query string, with ``changes``; "status" counts when empty
    (it means all statuses), the others only with a value, pages only past the first."""
    state = {
        key: request.GET[key]
        for key in STATE_KEYS
        if key in request.GET and (request.GET[key] or key == "status")
    }
    state.update(changes)
    return urlencode(
        {
            key: value
            for key, value in state.items()
            if (value or key == "status") and not (key in PAGE_KEYS and value == "1")
        }
    )


def _state_context(request: HttpRequest) -> dict:
    return {"state_query": _state(request)}


def _partial(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    response = render(request, template, {**context, **_state_context(request)})
    query = _state(request)
    response["HX-Replace-Url"] = f"{reverse('home')}?{query}" if query else reverse("home")
    return response


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
    page = keyset_paginate(alerts, request.GET.get("acursor", ""), time_field="event_time")
    return {
        "alert_page": page,
        "alert_newest": _state(request, acursor=""),
        "alert_oldest": _state(request, acursor=OLDEST),
        "alert_previous": _state(request, acursor=page.newer or ""),
        "alert_next": _state(request, acursor=page.older or ""),
        "severity": severity,
        "q": query,
        "severities": Severity.choices,
    }


def _incidents(request: HttpRequest, company_ids: list[int]) -> dict:
    status = request.GET.get("status", "open")
    if status not in dict(STATUS_FILTERS) and status != "":
        status = "open"
    iq = request.GET.get("iq", "").strip()[:QUERY_MAX]
    incidents = incident_search(
        company_ids=company_ids,
        filters=IncidentFilters(q=iq, status=status or "all", snoozed="show"),
        user=request.user,
    )
    page = paginate(incidents, request, param="ipage")
    return {
        "incident_page": page,
        "incident_previous": _state(request, ipage=str(page.number - 1)),
        "incident_next": _state(request, ipage=str(page.number + 1)),
        "status": status,
        "iq": iq,
        "statuses": STATUS_FILTERS,
    }


def _bad_cursor(error: BadCursor) -> HttpResponse:
    return HttpResponseBadRequest(f"{error} Open the alert list from its first page.")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    try:
        return _dashboard(request)
    except BadCursor as error:
        return _bad_cursor(error)


def _dashboard(request: HttpRequest) -> HttpResponse:
    company_ids = companies_in_view(request)
    context = {
        **_cards(request, company_ids),
        **_alerts(request, company_ids),
        **_incidents(request, company_ids),
        **_state_context(request),
    }
    context["demo_mode"] = settings.DEBUG
    return render(request, "dashboard/index.html", context)


@login_required
@require_POST
def demo_storm(request: HttpRequest) -> HttpResponse:
    """Demo mode only: anyone who works incidents of the selected (or first) company starts
    an alert storm for it, so a newcomer logged in as a technician sees the product move."""
    if not settings.DEBUG:
        raise PermissionDenied("The demo storm exists in the demo mode only.")
    if role_of(request.user) is None:
        raise PermissionDenied("Your account has no role yet.")
    company = selected_company(request) or next(iter(visible_companies_list(request)), None)
    if company is None:
        messages.error(request, "Create a company first: the storm needs one to send alerts for.")
        return redirect("home")
    if not can(request.user, Action.UPDATE_INCIDENT, company):
        raise PermissionDenied("Your role does not work incidents of this company.")
    start_storm_in_background(company_id=company.pk)
    messages.success(
        request,
        f"An alert storm for {company.name} has started: watch alerts arrive, correlate into "
        "incidents and get scored over the next minute.",
    )
    return redirect("home")


@login_required
def cards(request: HttpRequest) -> HttpResponse:
    return _partial(
        request, "dashboard/partials/_cards.html", _cards(request, companies_in_view(request))
    )


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    try:
        context = _alerts(request, companies_in_view(request))
    except BadCursor as error:
        return _bad_cursor(error)
    return _partial(request, "dashboard/partials/_alerts.html", context)


@login_required
def incidents(request: HttpRequest) -> HttpResponse:
    return _partial(
        request,
        "dashboard/partials/_incidents.html",
        _incidents(request, companies_in_view(request)),
    )
