"""The read API under /api/v1/: incidents, alerts, and the token exchange and revocation."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts.api import TokenRevokeView, TokenView
from apps.alerts.api.views import AlertViewSet
from apps.incidents.api.dependencies import DependenciesView
from apps.incidents.api.views import IncidentViewSet

app_name = "api"


router = SimpleRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("token/revoke/", TokenRevokeView.as_view(), name="token-revoke"),
    path(
        # Any segment reaches the view, so a slug that cannot exist is the API's JSON 404.
        "companies/<str:slug>/dependencies/",
        DependenciesView.as_view(),
        name="company-dependencies",
    ),
    *router.urls,
]
