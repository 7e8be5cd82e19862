"""The Incidents page (search, filters, sort and bulk actions, all in the URL) and the
incident page: header, priority breakdown, affected asset, timeline and alerts, and
the forms that change status, assign and add notes.

Every region that changes with new alerts is a partial with its own URL that re-fetches
itself on the live signal. The forms are plain POSTs (redirect on success, the page again
with inline errors and a 400 on failure); with htmx they post in place and get their own
partial back, then ask the live regions to refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import trigger_client_event

from apps.accounts.permissions import Action, can, get_scoped_or_404, scope
from apps.accounts.selection import companies_in_view, visible_companies_list
from apps.common import errors
from apps.common.pagination import paginate
from apps.incidents import scoring
from apps.incidents.filters import ALERT_SEARCH_PERIOD, SORT_LABELS, IncidentFilterForm
from apps.incidents.forms import AssignForm, BulkForm, NoteForm, StatusForm, TakeForm
from apps.incidents.merging import BULK_MERGE, incidents_merge_many
from apps.incidents.models import Incident
from apps.incidents.selectors import incident_search, incident_timeline, timeline_folded
from apps.incidents.services import (
    BULK_ACKNOWLEDGE,
    BULK_ASSIGN,
    BULK_RESOLVE,
    BULK_TAKE,
    incident_acknowledge,
    incident_assign,
    incident_note_add,
    incident_status_change,
    incidents_bulk_act,
)
from apps.incidents.services import incident_take as incident_take_and_acknowledge
from apps.runbooks.incident_views import runbook_panel

ALERTS_PER_PAGE = 25
INCIDENTS_PER_PAGE = 25
ACTIONS_PARTIAL = "incidents/partials/_actions.html"
NOTE_PARTIAL = "incidents/partials/_note_form.html"


def _get_incident(request: HttpRequest, pk: int) -> Incident:
    return get_scoped_or_404(
        Incident.objects.select_related(
            "company", "asset", "assigned_to", "resolved_by", "acknowledged_by"
        ),
        request.user,
        pk=pk,
    )


# --- The Incidents page ---------------------------------------------------------------------


def _updatable(request: HttpRequest) -> tuple[list[int], Any]:
    """The companies in view where the user may update incidents, and their incidents."""
    company_ids = [
        cid for cid in companies_in_view(request) if can(request.user, Action.UPDATE_INCIDENT, cid)
    ]
    incidents = scope(Incident.objects.filter(company_id__in=company_ids), request.user)
    return company_ids, incidents


def _list_context(request: HttpRequest, bulk_form: BulkForm | None = None) -> dict[str, Any]:
    companies = visible_companies_list(request)
    form = IncidentFilterForm(request.GET, companies=companies)
    filters = form.filters()
    incidents = incident_search(
        company_ids=companies_in_view(request), filters=filters, user=request.user
    )
    page = paginate(incidents, request, per_page=INCIDENTS_PER_PAGE, param="page")
    company_ids, updatable = _updatable(request)
    base = filters.query()
    return {
        "form": form,
        "alert_search_period": ALERT_SEARCH_PERIOD,
        "filters": filters,
        "incident_page": page,
        "page_query": filters.query(page=str(page.number)),
        "previous_query": filters.query(page=str(page.number - 1)),
        "next_query": filters.query(page=str(page.number + 1)),
        "sort_links": {key: filters.query(sort=key) for key in SORT_LABELS},
        "bulk_form": bulk_form or BulkForm(incidents=updatable, company_ids=company_ids),
        "list_url": f"{reverse('incidents:list')}?{base}" if base else reverse("incidents:list"),
    }


@login_required
@require_safe
def incident_list(request: HttpRequest) -> HttpResponse:
    """The whole page, or with htmx (not boosted, not a history restore) just the results:
    the filter form, the pager and the live refresh all ask for the same URL, so what is in
    the address bar is what is shown. A live refresh leaves the history alone."""
    context = _list_context(request)
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        response = render(request, "incidents/partials/_list.html", context)
        if request.htmx.trigger != "incident-results":
            # The form or the pager: a history entry, without the defaults the form sends.
            query = context["page_query"]
            response["HX-Push-Url"] = (
                f"{reverse('incidents:list')}?{query}" if query else (reverse("incidents:list"))
            )
    else:
        response = render(request, "incidents/list.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
def incident_bulk(request: HttpRequest) -> HttpResponse:
    """Take, assign, resolve or merge the selected incidents; only incidents the user may
    update in the companies in view can be selected. Back to the list it came from."""
    company_ids, updatable = _updatable(request)
    form = BulkForm(request.POST, incidents=updatable, company_ids=company_ids)
    back = request.POST.get("next", "")
    if not back.startswith(reverse("incidents:list")):
        back = reverse("incidents:list")
    if not form.is_valid():
        for field_errors in form.errors.values():
            for message in field_errors:
                messages.error(request, message)
        return redirect(back)
    data = form.cleaned_data
    if data["action"] == BULK_MERGE:
        return _bulk_merge(request, data, back)
    outcome = incidents_bulk_act(
        incident_ids=sorted(incident.pk for incident in data["ids"]),
        action=data["action"],
        actor=request.user,
        assignee=data["assignee"],
        note=data["note"],
    )
    if outcome.done:
        done_what = {
            BULK_TAKE: "taken by you",
            BULK_ACKNOWLEDGE: "acknowledged",
            BULK_ASSIGN: f"assigned to {data['assignee']}",
            BULK_RESOLVE: "resolved",
        }[data["action"]]
        numbers = ", ".join(f"#{pk}" for pk in outcome.done)
        messages.success(request, f"{len(outcome.done)} {done_what}: {numbers}.")
    for pk, reason in outcome.skipped.items():
        messages.warning(request, f"#{pk} skipped: {reason}")
    return redirect(back)


def _bulk_merge(request: HttpRequest, data: dict[str, Any], back: str) -> HttpResponse:
    into = data["into"]
    done, skipped = incidents_merge_many(
        incident_ids=[incident.pk for incident in data["ids"]], into_id=into, actor=request.user
    )
    if done:
        numbers = ", ".join(f"#{pk}" for pk in done)
        messages.success(request, f"{len(done)} merged into #{into}: {numbers}.")
    for pk, reason in skipped.items():
        messages.warning(request, f"#{pk} skipped: {reason}")
    return redirect(back)


# --- Regions ---------------------------------------------------------------------------------


def _header(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    return {"incident": incident}


def _breakdown(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    now = timezone.now()
    return {
        "incident": incident,
        "breakdown": scoring.priority_breakdown(
            severity=incident.severity,
            asset_critical=incident.asset is not None and incident.asset.is_critical,
            alert_count=incident.alert_count,
            tool_count=len(incident.tool_sources),
            first_alert_at=incident.first_alert_at,
            now=now,
        ),
        "age_hours": max(0, int((now - incident.first_alert_at).total_seconds() // 3600)),
        "duplicates": max(incident.alert_count - 1, 0),
        "rules": {
            "per_duplicate": scoring.POINTS_PER_DUPLICATE,
            "max_duplicates": scoring.MAX_DUPLICATE_POINTS,
            "max_age": scoring.MAX_AGE_DECAY,
        },
    }


def _timeline(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    timeline = incident_timeline(incident=incident)
    return {"incident": incident, "timeline": timeline, "folded": timeline_folded(timeline)}


def _alerts(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    alerts = incident.alerts.order_by("-event_time", "-id").defer("raw")
    return {"incident": incident, "alert_page": paginate(alerts, request, per_page=ALERTS_PER_PAGE)}


PARTS: dict[str, Callable[[HttpRequest, Incident], dict[str, Any]]] = {
    "header": _header,
    "breakdown": _breakdown,
    "timeline": _timeline,
    "alerts": _alerts,
    "runbooks": runbook_panel,
}
LIVE_PARTS = {**PARTS, "actions": lambda request, incident: _forms(request, incident)}


def _forms(request: HttpRequest, incident: Incident, **bound: forms.Form) -> dict[str, Any]:
    if not can(request.user, Action.UPDATE_INCIDENT, incident.company):
        return {"incident": incident, "can_update": False}
    return {
        "incident": incident,
        "can_update": True,
        "status_form": StatusForm(incident=incident),
        "assign_form": AssignForm(incident=incident),
        "take_form": TakeForm(),
        "note_form": NoteForm(),
        **bound,
    }


def _page(request: HttpRequest, incident: Incident, **bound: forms.Form) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for build in PARTS.values():
        context.update(build(request, incident))
    return {**context, **_forms(request, incident, **bound)}


@login_required
@require_safe
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _get_incident(request, pk)
    return render(request, "incidents/detail.html", _page(request, incident))


@login_required
@require_safe
def incident_part(request: HttpRequest, pk: int, part: str) -> HttpResponse:
    incident = _get_incident(request, pk)
    return render(request, f"incidents/partials/_{part}.html", LIVE_PARTS[part](request, incident))


# --- Actions ---------------------------------------------------------------------------------


def _incident_action(
    view: Callable[[HttpRequest, Incident], HttpResponse],
) -> Callable[[HttpRequest, int], HttpResponse]:
    """POST only, logged in, the incident visible (else 404) and changeable (else 403)."""

    @wraps(view)
    @login_required
    @require_POST
    def wrapper(request: HttpRequest, pk: int) -> HttpResponse:
        incident = _get_incident(request, pk)
        if not can(request.user, Action.UPDATE_INCIDENT, incident.company):
            return render(request, "incidents/forbidden.html", {"incident": incident}, status=403)
        return view(request, incident)

    return wrapper


def _act(
    request: HttpRequest,
    incident: Incident,
    *,
    form: forms.Form,
    form_name: str,
    partial: str,
    perform: Callable[[dict[str, Any]], str],
    anchor: str = "",
) -> HttpResponse:
    """Validate ``form``, run ``perform`` (a service call returning the success message) and
    answer: a redirect, or the page with the form's errors; with htmx, the form's partial."""
    if form.is_valid():
        try:
            success = perform(form.cleaned_data)
        except errors.ValidationError as error:
            for field, field_errors in error.fields.items():
                for message in field_errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, success)
            if request.htmx:
                fresh = _get_incident(request, incident.pk)
                response = render(request, partial, _forms(request, fresh))
                return trigger_client_event(response, "live-refresh")
            url = reverse("incidents:detail", args=[incident.pk])
            return redirect(f"{url}#{anchor}" if anchor else url)
    if request.htmx:
        # 200, not 400: htmx 2 does not swap error responses, and the errors are the point.
        return render(request, partial, _forms(request, incident, **{form_name: form}))
    return render(
        request, "incidents/detail.html", _page(request, incident, **{form_name: form}), status=400
    )


@_incident_action
def incident_status(request: HttpRequest, incident: Incident) -> HttpResponse:
    def perform(data: dict[str, Any]) -> str:
        updated = incident_status_change(
            incident_id=incident.pk, status=data["status"], note=data["note"], actor=request.user
        )
        return f"Status changed to {updated.get_status_display().lower()}."

    return _act(
        request,
        incident,
        form=StatusForm(request.POST, incident=incident),
        form_name="status_form",
        partial=ACTIONS_PARTIAL,
        perform=perform,
    )


@_incident_action
def incident_assign_to(request: HttpRequest, incident: Incident) -> HttpResponse:
    def perform(data: dict[str, Any]) -> str:
        incident_assign(incident_id=incident.pk, assignee=data["assignee"], actor=request.user)
        return f"Assigned to {data['assignee']}; they have been notified."

    return _act(
        request,
        incident,
        form=AssignForm(request.POST, incident=incident),
        form_name="assign_form",
        partial=ACTIONS_PARTIAL,
        perform=perform,
    )


@_incident_action
def incident_take(request: HttpRequest, incident: Incident) -> HttpResponse:
    def perform(data: dict[str, Any]) -> str:
        incident_take_and_acknowledge(incident_id=incident.pk, actor=request.user)
        return "You took the incident. It is assigned to you and acknowledged."

    return _act(
        request,
        incident,
        form=TakeForm(request.POST),
        form_name="take_form",
        partial=ACTIONS_PARTIAL,
        perform=perform,
    )


@_incident_action
def incident_ack(request: HttpRequest, incident: Incident) -> HttpResponse:
    def perform(data: dict[str, Any]) -> str:
        incident_acknowledge(incident_id=incident.pk, actor=request.user)
        return "Acknowledged: escalation stops."

    return _act(
        request,
        incident,
        form=TakeForm(request.POST),
        form_name="take_form",
        partial=ACTIONS_PARTIAL,
        perform=perform,
    )


@_incident_action
def incident_note(request: HttpRequest, incident: Incident) -> HttpResponse:
    def perform(data: dict[str, Any]) -> str:
        incident_note_add(incident_id=incident.pk, text=data["text"], actor=request.user)
        return "Note added."

    return _act(
        request,
        incident,
        form=NoteForm(request.POST),
        form_name="note_form",
        partial=NOTE_PARTIAL,
        perform=perform,
        anchor="timeline",
    )
