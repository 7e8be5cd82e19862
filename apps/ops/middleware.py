"""Middleware of both servers, first in ``MIDDLEWARE`` and ``WEBHOOK_SERVER_MIDDLEWARE``, so
the id covers every log line and the count every answer (refusals by the inner middleware
included). Both sit on the webhook's hot path: a few attribute reads each, no I/O."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.alerts.adapters import ADAPTERS, SOURCE_ALIASES
from apps.ops import requestid
from apps.ops.metrics import WEBHOOK_DELIVERIES

WEBHOOK_PATH = "/api/webhooks/alerts"
# The source label takes a bounded set of values whatever the URL says: a scanner trying
# made-up sources must not grow the metric without end.
SOURCE_LABELS = {**{name: name for name in ADAPTERS}, **SOURCE_ALIASES}


class RequestIdMiddleware:
    """Takes a valid ``X-Request-ID`` or makes one, keeps it in a context variable for the
    log records and Celery tasks of the request, and answers it in the same header.

    The variable is cleared when the response is closed (``request_finished``), not when
    this returns: Django logs 4xx answers after the middleware chain, and those lines
    should carry the id too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        value = requestid.incoming_or_new(request.META.get(requestid.META_KEY))
        requestid.request_id.set(value)
        response = self.get_response(request)
        response[requestid.HEADER] = value
        return response


def webhook_source(request: HttpRequest) -> str:
    """The route's ``source`` as a metric label: "auto" when the URL names none (the
    adapter is chosen by the body), "unknown" for anything that is not a source."""
    match = request.resolver_match
    if match is None:
        return "unknown"
    source = match.kwargs.get("source")
    if source is None:
        return "auto"
    return SOURCE_LABELS.get(source.lower(), "unknown")


class WebhookMetricsMiddleware:
    """Counts webhook deliveries by source and answered status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path_info.startswith(WEBHOOK_PATH):
            WEBHOOK_DELIVERIES.labels(webhook_source(request), str(response.status_code)).inc()
        return response
