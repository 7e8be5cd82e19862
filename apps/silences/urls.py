from django.urls import path

from apps.silences import views

app_name = "silences"

urlpatterns = [
    path("", views.silence_list, name="list"),
    path("new/", views.silence_create, name="create"),
    path("<int:pk>/expire/", views.silence_expire, name="expire"),
    path("snooze/<int:pk>/", views.incident_snooze, name="snooze"),
    path("wake/<int:pk>/", views.incident_wake, name="wake"),
]
