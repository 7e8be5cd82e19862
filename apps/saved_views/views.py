"""Save the Incidents page's current view under a name, or delete a saved one; both for
the signed-in person's own views only, and back to the Incidents page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.common.errors import ValidationError
from apps.saved_views.services import saved_view_delete, saved_view_save


@login_required
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    try:
        view = saved_view_save(
            user=request.user,
            name=request.POST.get("name", ""),
            query=request.POST.get("query", ""),
        )
    except ValidationError as error:
        messages.error(request, error.message)
        query = request.POST.get("query", "")
        return redirect(f"{reverse('incidents:list')}?{query}" if query else "incidents:list")
    messages.success(request, f"View “{view.name}” saved.")
    return redirect(f"{reverse('incidents:list')}?{view.query}" if view.query else "incidents:list")


@login_required
@require_POST
def saved_view_remove(request: HttpRequest, pk: int) -> HttpResponse:
    if saved_view_delete(user=request.user, view_id=pk):
        messages.success(request, "View deleted.")
    return redirect("incidents:list")
