from django.urls import path

from apps.alerts.views import alert_source

app_name = "alerts"

urlpatterns = [
    path("<int:pk>/source", alert_source, name="source"),
]
