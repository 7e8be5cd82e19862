from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from alertwhisperer.urls_webhooks import urlpatterns as webhook_urlpatterns
from apps.dashboard.admin_gate import msp_only
from apps.dashboard.views import dashboard

urlpatterns = [
    path("", dashboard, name="home"),
    path("dashboard/", include("apps.dashboard.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("companies/", include("apps.tenants.urls")),
    path("incidents/", include("apps.incidents.urls")),
    path("alerts/", include("apps.alerts.urls")),
    path("heartbeats/", include("apps.heartbeats.urls")),
    path("silences/", include("apps.silences.urls")),
    path("views/", include("apps.saved_views.urls")),
    path("team/", include("apps.accounts.team_urls")),
    path("audit/", include("apps.audit.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path("runbooks/", include("apps.runbooks.urls")),
    path("approvals/", include("apps.approvals.urls")),
    path("kpis/", include("apps.kpis.urls")),
    path("compliance/", include("apps.compliance.urls")),
    path("chat/", include("apps.chat.urls")),
    path("oncall/", include("apps.oncall.urls")),
    path("admin/", msp_only(admin.site.urls)),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    *webhook_urlpatterns,
    path("api/v1/", include("alertwhisperer.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
