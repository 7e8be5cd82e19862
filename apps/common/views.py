from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused form in the product's own words, not Django's debug page."""
    return render(request, "403_csrf.html", status=403)


# Error pages of the webhook server (alertwhisperer/urls_webhooks.py), which has no
# sessions or users to render the product's HTML pages with: the API's JSON error shape.
def api_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {"error": "bad_request", "message": "The request is malformed or its Host is not served."},
        status=400,
    )


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {
            "error": "not_found",
            "message": "Nothing here: post alerts to /api/webhooks/alerts or "
            "/api/webhooks/alerts/<source>.",
        },
        status=404,
    )


def api_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"error": "server_error", "message": "The server failed; the delivery was not stored."},
        status=500,
    )
