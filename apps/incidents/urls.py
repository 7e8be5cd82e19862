from django.urls import path

from apps.incidents import correlation_views, views
from apps.runbooks import incident_views

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list, name="list"),
    path("bulk/", views.incident_bulk, name="bulk"),
    path("<int:pk>/", views.incident_detail, name="detail"),
    path("<int:pk>/header/", views.incident_part, {"part": "header"}, name="header"),
    path("<int:pk>/breakdown/", views.incident_part, {"part": "breakdown"}, name="breakdown"),
    path("<int:pk>/timeline/", views.incident_part, {"part": "timeline"}, name="timeline"),
    path("<int:pk>/alerts/", views.incident_part, {"part": "alerts"}, name="alerts"),
    path("<int:pk>/actions/", views.incident_part, {"part": "actions"}, name="actions"),
    path("<int:pk>/status/", views.incident_status, name="status"),
    path("<int:pk>/assign/", views.incident_assign_to, name="assign"),
    path("<int:pk>/take/", views.incident_take, name="take"),
    path("<int:pk>/acknowledge/", views.incident_ack, name="acknowledge"),
    path("<int:pk>/notes/", views.incident_note, name="note"),
    path(
        "dependencies/<slug:slug>/import/",
        correlation_views.dependencies_import,
        name="dependencies_import",
    ),
    path("<int:pk>/merge/", correlation_views.incident_merge_view, name="merge"),
    path("<int:pk>/split/", correlation_views.incident_split_view, name="split"),
    path("<int:pk>/runbooks/", incident_views.incident_runbooks, name="runbooks"),
    path("<int:pk>/runbooks/run/", incident_views.incident_runbook_run, name="runbook_run"),
    path(
        "<int:pk>/runbooks/<int:execution_pk>/close/",
        incident_views.incident_execution_close,
        name="execution_close",
    ),
]
