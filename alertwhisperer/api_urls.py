"""The read API under /api/v1/: incidents, alerts, and the token exchange."""

from django.urls import path
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.routers import SimpleRouter
from rest_framework.throttling import ScopedRateThrottle

from apps.alerts.api.views import AlertViewSet
from apps.incidents.api.views import IncidentViewSet

app_name = "api"


class TokenView(ObtainAuthToken):
    """Email and password for an API token; limited like the log-in page."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"


router = SimpleRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    *router.urls,
]
