from collections.abc import Callable

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.alerts import adapters, webhook
from apps.common.api import error_responses, exception_handler


def read_body(request: HttpRequest) -> bytes:
    """The raw body, 413 beyond ``MAX_BODY_BYTES``: from Content-Length before reading, and
    while reading, never holding more than the limit and one byte.

    A chunked body has no Content-Length, and Django's WSGI request then reads nothing (a
    WSGI server need not end its input). A server that does end it says so with
    ``wsgi.input_terminated`` (granian, gunicorn, mod_wsgi), and the body is read from
    ``wsgi.input`` until its end. Under ASGI, Django has gathered the body already."""
    webhook.check_size(request.META.get("CONTENT_LENGTH"))
    stream = request
    if (
        isinstance(request, WSGIRequest)
        and not request.META.get("CONTENT_LENGTH")
        and request.environ.get("wsgi.input_terminated")
    ):
        stream = request.environ["wsgi.input"]
    body = stream.read(webhook.MAX_BODY_BYTES + 1)
    webhook.check_size(str(len(body)))
    return body


class JSONAnswers(BaseContentNegotiation):
    """Monitoring tools send all sorts of Accept headers; the webhook answers JSON to each
    (DRF's "ignore client content negotiation" pattern, also cheaper than negotiating)."""

    def select_parser(self, request: Request, parsers: list) -> None:
        return None  # the view reads the raw body itself

    def select_renderer(
        self, request: Request, renderers: list, format_suffix: str | None = None
    ) -> tuple:
        return renderers[0], renderers[0].media_type


class AlertWebhookView(APIView):
    """Monitoring tools post here. The API key authenticates the company; no user session."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONAnswers
    throttle_classes: list = []

    @extend_schema(
        operation_id="webhook_alerts",
        summary="Receive alerts from a monitoring tool",
        description=(
            "Body: the tool's own webhook payload (Alertmanager, Grafana, Datadog, Zabbix, "
            "Amazon SNS with CloudWatch alarms) or the generic JSON. Optional headers: "
            "X-Delivery-ID (idempotency for 24 h), X-Timestamp and X-Signature (HMAC)."
        ),
        request={"application/json": OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "Generic alert",
                request_only=True,
                value={
                    "asset_name": "srv-db-01",
                    "signature": "disk_full",
                    "severity": "critical",
                    "message": "Disk / is 95% full",
                    "tool_source": "Datadog",
                },
            )
        ],
        parameters=[
            OpenApiParameter("api_key", str, OpenApiParameter.QUERY, required=False),
            OpenApiParameter("X-API-Key", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("X-Delivery-ID", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("X-Timestamp", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("X-Signature", str, OpenApiParameter.HEADER, required=False),
        ],
        responses={
            202: inline_serializer(
                "WebhookAccepted",
                {
                    "accepted": serializers.IntegerField(),
                    "alert_ids": serializers.ListField(child=serializers.IntegerField()),
                    "duplicate": serializers.BooleanField(),
                },
            ),
            200: OpenApiResponse(description="SNS subscription confirmation handled."),
            **error_responses(
                {
                    400: "The payload is invalid; the message says why, `fields` where.",
                    401: "Missing or unknown API key, or a bad signature.",
                    404: "Unknown source in the URL.",
                    413: "Body over 1 MiB.",
                    415: "Unsupported content type.",
                    429: "Rate limit exceeded; see Retry-After.",
                    503: "A store the webhook needs is unreachable; retry later.",
                }
            ),
        },
    )
    def post(self, request: Request, source: str | None = None) -> Response:
        django_request = request._request
        api_key = django_request.GET.get("api_key") or django_request.headers.get("X-API-Key", "")
        entry = webhook.authenticate(api_key)
        result = webhook.receive(
            webhook.WebhookRequest(
                api_key=api_key,
                source=source,
                body=read_body(django_request),
                content_type=django_request.META.get("CONTENT_TYPE", ""),
                headers=django_request.headers,
            ),
            entry=entry,
        )
        return Response(result.body, status=result.status, headers=result.headers)


@extend_schema_view(post=extend_schema(operation_id="webhook_alerts_by_source"))
class AlertWebhookSourceView(AlertWebhookView):
    """The same endpoint with the source named in the path."""


@extend_schema(exclude=True)
class AlertWebhookSlashView(AlertWebhookView):
    """``/api/webhooks/alerts/``: the same endpoint for tools configured with a slash."""


def _routing_key(body: bytes) -> str:
    routing_key = adapters.decode_body(body).get("routing_key")
    return routing_key if isinstance(routing_key, str) else ""


def pagerduty_exception_handler(exc: Exception, context: dict) -> Response | None:
    """The API's error answers in the shape PagerDuty's Events API v2 gives and its clients
    read: 400 "invalid event" with ``errors`` for whatever the tool must fix (a bad routing
    key included), 429 "throttle event", 5xx as they are; only 429 and 5xx are retried."""
    response = exception_handler(exc, context)
    if response is None or response.status_code >= 500:
        if response is not None:
            response.data = {"status": "unavailable", "message": response.data["message"]}
        return response
    if response.status_code == 429:
        response.data = {
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
        }
        return response
    fields = response.data.get("fields") or {}
    errors = [f"{name}: {' '.join(messages)}" for name, messages in fields.items()]
    response.data = {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": errors or [response.data["message"]],
    }
    response.status_code = 400
    return response


# Outside the OpenAPI document: it answers in PagerDuty's shapes, not the API's error shape,
# and PagerDuty's Events API v2 reference documents it.
@extend_schema(exclude=True)
class PagerDutyEventsView(APIView):
    """PagerDuty Events API v2 (``/v2/enqueue``): tools that can notify PagerDuty post here.
    The routing key is the company's API key; ``?api_key=`` or ``X-API-Key`` may carry it
    instead. The body is read before the key is checked, since it holds the key."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONAnswers
    throttle_classes: list = []

    def get_exception_handler(self) -> Callable[[Exception, dict], Response | None]:
        return pagerduty_exception_handler

    def post(self, request: Request) -> Response:
        django_request = request._request
        body = read_body(django_request)
        api_key = (
            django_request.GET.get("api_key")
            or django_request.headers.get("X-API-Key", "")
            or _routing_key(body)
        )
        result = webhook.receive(
            webhook.WebhookRequest(
                api_key=api_key,
                source="pagerduty",
                body=body,
                content_type=django_request.META.get("CONTENT_TYPE", ""),
                headers=django_request.headers,
            )
        )
        return Response(
            {
                "status": "success",
                "message": "Event processed",
                "dedup_key": result.body["dedup_key"],
            },
            status=202,
            headers=result.headers,
        )
