"""The heartbeat list (with its create form) and delete button of the console, and the
ping endpoint that cron jobs and tools call."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.permissions import Action, can, get_scoped_or_404, scope, visible_companies
from apps.heartbeats.forms import HeartbeatForm
from apps.heartbeats.models import Heartbeat
from apps.heartbeats.services import heartbeat_create, heartbeat_delete, heartbeat_ping
from apps.tenants.models import Company

MANAGE_REFUSAL = "Only the company's administrators manage its heartbeats."


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "tenants/forbidden.html", {"message": MANAGE_REFUSAL}, status=403)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def ping(request: HttpRequest, token: str) -> JsonResponse:
    heartbeat = heartbeat_ping(token=token, now=timezone.now())
    if heartbeat is None:
        return JsonResponse(
            {"error": "not_found", "message": "Unknown heartbeat: check the ping URL."},
            status=404,
        )
    return JsonResponse({"status": "ok", "heartbeat": heartbeat.name})


@login_required
@require_http_methods(["GET", "POST"])
def heartbeat_list(request: HttpRequest) -> HttpResponse:
    managed = [
        c.pk for c in visible_companies(request.user) if can(request.user, Action.MANAGE_COMPANY, c)
    ]
    manageable = Company.objects.filter(pk__in=managed).order_by("name")
    form = HeartbeatForm(request.POST or None, companies=manageable)
    status = 200
    if request.method == "POST":
        if not managed:
            return _forbidden(request)
        if form.is_valid():
            heartbeat = heartbeat_create(actor=request.user, **form.service_kwargs())
            messages.success(request, f"Heartbeat {heartbeat.name} created: ping its URL.")
            return redirect("heartbeats:list")
        status = 400
    heartbeats = scope(Heartbeat.objects.select_related("company"), request.user)
    context = {"heartbeats": heartbeats, "form": form, "can_manage": bool(managed)}
    return render(request, "heartbeats/list.html", context, status=status)


@login_required
@require_POST
def heartbeat_remove(request: HttpRequest, pk: int) -> HttpResponse:
    heartbeat = get_scoped_or_404(Heartbeat.objects.select_related("company"), request.user, pk=pk)
    if not can(request.user, Action.MANAGE_COMPANY, heartbeat.company):
        return _forbidden(request)
    heartbeat_delete(heartbeat=heartbeat, actor=request.user, now=timezone.now())
    messages.success(request, f"Heartbeat {heartbeat.name} deleted.")
    return redirect("heartbeats:list")
