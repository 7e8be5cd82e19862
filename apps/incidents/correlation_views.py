"""Merge and split by hand, from the incident page's "Why these alerts" card, and the
dependency import of the company page. POST only, the incident or company visible to the
user (else 404) and changeable by them (else 403); the answer is a redirect with a
message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import Action, can, get_scoped_or_404
from apps.common import errors
from apps.incidents.dependencies import (
    MAX_FILE_BYTES,
    dependencies_from_file,
    dependencies_replace,
)
from apps.incidents.merging import incident_merge, incident_split
from apps.incidents.models import Incident
from apps.tenants.models import AssetDependency, Company


class MergeForm(forms.Form):
    into = forms.IntegerField(label="Merge into incident #", min_value=1)


class SplitForm(forms.Form):
    alerts = forms.TypedMultipleChoiceField(coerce=int, choices=())

    def __init__(self, *args, choices: list[int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["alerts"].choices = [(pk, pk) for pk in choices]


def _incident(request: HttpRequest, pk: int) -> Incident:
    return get_scoped_or_404(Incident.objects.select_related("company"), request.user, pk=pk)


def _forbidden(request: HttpRequest, incident: Incident) -> HttpResponse:
    return render(request, "incidents/forbidden.html", {"incident": incident}, status=403)


def _regroup(
    request: HttpRequest,
    pk: int,
    *,
    form_for: Callable[[Incident], forms.Form],
    invalid: str,
    perform: Callable[[Incident, dict[str, Any]], tuple[Incident, str]],
) -> HttpResponse:
    """What merge and split share: the incident visible (else 404) and changeable (else
    403), the form valid (else ``invalid`` as a message), then ``perform`` (a service call
    returning the incident to show and the success message; its refusal becomes a message)."""
    incident = _incident(request, pk)
    if not can(request.user, Action.UPDATE_INCIDENT, incident.company):
        return _forbidden(request, incident)
    form = form_for(incident)
    if not form.is_valid():
        messages.error(request, invalid)
        return redirect("incidents:detail", pk)
    try:
        shown, success = perform(incident, form.cleaned_data)
    except errors.ValidationError as error:
        messages.error(request, error.message)
        return redirect("incidents:detail", pk)
    messages.success(request, success)
    return redirect("incidents:detail", shown.pk)


@login_required
@require_POST
def incident_merge_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _regroup(
        request,
        pk,
        form_for=lambda incident: MergeForm(request.POST),
        invalid="Give the number of the incident to merge into.",
        perform=lambda incident, data: (
            incident_merge(incident=incident, into_id=data["into"], actor=request.user),
            f"Incident #{pk} merged into this one.",
        ),
    )


@login_required
@require_POST
def incident_split_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _regroup(
        request,
        pk,
        form_for=lambda incident: SplitForm(
            request.POST, choices=list(incident.alerts.values_list("id", flat=True))
        ),
        invalid="Choose the alerts to split out.",
        perform=lambda incident, data: (
            incident_split(incident=incident, alert_ids=data["alerts"], actor=request.user),
            f"Split out of incident #{pk}.",
        ),
    )


@login_required
@require_POST
def dependencies_import(request: HttpRequest, slug: str) -> HttpResponse:
    company = get_scoped_or_404(Company.objects.all(), request.user, company_field="", slug=slug)
    if not can(request.user, Action.MANAGE_COMPANY, company):
        return render(request, "tenants/forbidden.html", {"company": company}, status=403)
    back = redirect(f"{reverse('tenants:company_detail', args=[slug])}#dependencies")
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a YAML or CSV file to import.")
        return back
    try:
        content = upload.read(MAX_FILE_BYTES + 1)
        graph = dependencies_from_file(name=upload.name, content=content)
        graph = dependencies_replace(
            company=company, graph=graph, actor=request.user, source=AssetDependency.Source.IMPORT
        )
    except errors.ValidationError as error:
        messages.error(request, error.message)
        return back
    edges = sum(len(parents) for parents in graph.values())
    messages.success(request, f"Dependencies replaced: {edges} from {upload.name}.")
    return back
