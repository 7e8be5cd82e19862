"""The silences page (list, create, expire) and the incident page's snooze and wake.
Technicians, company admins and MSP admins may silence in the companies where they may
update incidents; every change is audited by the services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.permissions import Action, can, get_scoped_or_404
from apps.accounts.selection import companies_in_view, visible_companies_list
from apps.common.errors import ValidationError
from apps.incidents.models import Incident
from apps.silences import selectors, services
from apps.silences.forms import DURATIONS, SilenceForm, SnoozeForm
from apps.silences.models import Silence
from apps.tenants.models import Company

PREFILL = ("company", "asset_name", "signature", "labels")
ENDED_SHOWN = 100


def _companies(request: HttpRequest):
    ids = [
        c.pk
        for c in visible_companies_list(request)
        if can(request.user, Action.UPDATE_INCIDENT, c.pk)
    ]
    return Company.objects.filter(pk__in=ids).order_by("name")


def _page(request: HttpRequest, form: SilenceForm, status: int = 200) -> HttpResponse:
    """Every active silence, and the most recent ended ones."""
    company_ids = companies_in_view(request)
    return render(
        request,
        "silences/list.html",
        {
            "form": form,
            "active": selectors.silence_list(company_ids=company_ids, active=True),
            "past": selectors.silence_list(
                company_ids=company_ids, active=False, limit=ENDED_SHOWN
            ),
            "ended_shown": ENDED_SHOWN,
        },
        status=status,
    )


@login_required
def silence_list(request: HttpRequest) -> HttpResponse:
    """The silences of the companies in view; the form prefilled from the query string
    ("Silence alerts like this" links pass the alert's host and signature)."""
    companies = _companies(request)
    initial = {key: request.GET[key] for key in PREFILL if request.GET.get(key)}
    if "company" in initial:
        initial["company"] = companies.filter(slug=initial["company"]).first()
    return _page(request, SilenceForm(initial=initial, companies=companies))


@login_required
@require_POST
def silence_create(request: HttpRequest) -> HttpResponse:
    form = SilenceForm(request.POST, companies=_companies(request))
    if form.is_valid():
        data = form.cleaned_data
        try:
            silence = services.silence_create(
                company=data["company"],
                asset_name=data["asset_name"],
                signature=data["signature"],
                labels=data["labels"],
                reason=data["reason"],
                ends_at=timezone.now() + DURATIONS[data["duration"]],
                actor=request.user,
            )
        except ValidationError as error:
            for field, errors in error.fields.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(
                request,
                f"Silenced {silence.matcher_text} in {silence.company.name} until "
                f"{timezone.localtime(silence.ends_at):%H:%M %Z} ({data['duration']}).",
            )
            return redirect("silences:list")
    return _page(request, form, status=400)


@login_required
@require_POST
def silence_expire(request: HttpRequest, pk: int) -> HttpResponse:
    silence = get_scoped_or_404(Silence.objects.select_related("company"), request.user, pk=pk)
    if not can(request.user, Action.UPDATE_INCIDENT, silence.company):
        return render(request, "silences/forbidden.html", status=403)
    try:
        services.silence_expire(silence_id=silence.pk, actor=request.user)
    except ValidationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Silence of {silence.matcher_text} ended.")
    return redirect("silences:list")


def _incident_for_update(request: HttpRequest, pk: int) -> Incident | HttpResponse:
    incident = get_scoped_or_404(Incident.objects.select_related("company"), request.user, pk=pk)
    if not can(request.user, Action.UPDATE_INCIDENT, incident.company):
        return render(request, "silences/forbidden.html", status=403)
    return incident


@login_required
@require_POST
def incident_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident_for_update(request, pk)
    if isinstance(incident, HttpResponse):
        return incident
    form = SnoozeForm(request.POST)
    if form.is_valid():
        try:
            snooze = services.incident_snooze(
                incident_id=incident.pk,
                until=timezone.now() + DURATIONS[form.cleaned_data["duration"]],
                reason=form.cleaned_data["reason"],
                actor=request.user,
            )
        except ValidationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Snoozed until {timezone.localtime(snooze.until):%H:%M %Z}.")
    else:
        messages.error(request, "Choose how long to snooze it.")
    return redirect(reverse("incidents:detail", args=[incident.pk]))


@login_required
@require_POST
def incident_wake(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident_for_update(request, pk)
    if isinstance(incident, HttpResponse):
        return incident
    if services.incident_wake(incident_id=incident.pk, actor=request.user):
        messages.success(request, "Woken up: it notifies again.")
    return redirect(reverse("incidents:detail", args=[incident.pk]))
