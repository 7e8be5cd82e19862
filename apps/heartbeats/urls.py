from django.urls import path

from apps.heartbeats import views

app_name = "heartbeats"

urlpatterns = [
    path("", views.heartbeat_list, name="list"),
    path("<int:pk>/delete", views.heartbeat_remove, name="delete"),
]
