"""The alert's source panel of the console: links back to the tool and the raw payload,
fetched when a technician opens it (the incident page lists alerts without their raw)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.accounts.permissions import get_scoped_or_404
from apps.alerts.models import Alert
from apps.alerts.selectors import alert_links, raw_pretty


@login_required
@require_safe
def alert_source(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_scoped_or_404(Alert.objects.select_related("company"), request.user, pk=pk)
    return render(
        request,
        "alerts/partials/_source.html",
        {"alert": alert, "links": alert_links(alert=alert), "raw": raw_pretty(alert=alert)},
    )
