"""The read API under /api/v1/: incidents, alerts, and the token exchange."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.routers import SimpleRouter
from rest_framework.throttling import ScopedRateThrottle

from apps.alerts.api.views import AlertViewSet
from apps.common.api import error_responses
from apps.incidents.api.views import IncidentViewSet

app_name = "api"


@extend_schema(
    responses={
        200: AuthTokenSerializer,
        **error_responses(
            {
                400: "Missing fields, or wrong email or password.",
                401: "The request carried an invalid token.",
                415: "Unsupported content type.",
                429: "Too many attempts; see Retry-After.",
            }
        ),
    }
)
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
