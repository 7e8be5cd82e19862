"""The webhook endpoint's routes, and the probes and metrics (``apps.ops``) every server
answers: part of the main URLconf, and the whole URLconf of the webhook server
(``alertwhisperer.webhooks_wsgi``)."""

from django.urls import include, path

from apps.alerts.api.webhook import (
    AlertWebhookSlashView,
    AlertWebhookSourceView,
    AlertWebhookView,
    PagerDutyEventsView,
)
from apps.common.views import api_bad_request, api_not_found, api_server_error
from apps.heartbeats.views import ping as heartbeat_ping

urlpatterns = [
    path("api/webhooks/alerts", AlertWebhookView.as_view(), name="webhook"),
    path("api/webhooks/alerts/", AlertWebhookSlashView.as_view()),
    path("api/webhooks/alerts/pagerduty", PagerDutyEventsView.as_view(), name="webhook-pagerduty"),
    path("api/webhooks/alerts/pagerduty/", PagerDutyEventsView.as_view()),
    path(
        "api/webhooks/alerts/<str:source>", AlertWebhookSourceView.as_view(), name="webhook-source"
    ),
    path("api/heartbeats/<str:token>", heartbeat_ping, name="heartbeat-ping"),
    path("", include("apps.ops.urls")),
]

handler400 = api_bad_request
handler404 = api_not_found
handler500 = api_server_error
