"""Pages when a service is away (Redis: the log-in throttle, rate limits, the cache and the
Celery broker; or the database): a 503 that names it, with ``Retry-After``, as the API
answers (apps.common.api), instead of a 500 page that says nothing."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from apps.common.api import service_unavailable


class ServiceUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        unavailable = service_unavailable(exception)
        if unavailable is None:
            return None
        page = render_to_string("503.html", {"message": unavailable.message})
        return HttpResponse(page, status=503, headers=unavailable.headers)
