"""Probes and metrics, served by both servers without a session or a login.

``/healthz``: the process answers (no dependency is touched). ``/readyz``: the database,
Redis, the worker heartbeat and the correlation lag, 200 or 503 with the same JSON
breakdown. ``/metrics``: Prometheus text, behind ``METRICS_TOKEN`` (a bearer token) when it
is set, otherwise to direct loopback requests only. None of them names a company.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from apps.ops.metrics import exposition
from apps.ops.selectors import readiness

LOOPBACK = {"127.0.0.1", "::1"}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "alive"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    report = readiness(now=timezone.now())
    return JsonResponse(report, status=200 if report["status"] == "ready" else 503)


def metrics_allowed(request: HttpRequest) -> bool:
    """With ``METRICS_TOKEN``: ``Authorization: Bearer <token>``, compared in constant time.
    Without: a direct request from this machine; one relayed by a proxy (which would
    come from loopback too) carries a forwarding header and is refused."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())
    forwarded = "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META
    return request.META.get("REMOTE_ADDR") in LOOPBACK and not forwarded


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        if not settings.METRICS_TOKEN:
            return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(now=timezone.now()), content_type=CONTENT_TYPE_LATEST)
