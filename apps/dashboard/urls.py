from django.urls import path

from apps.dashboard import preferences, views

app_name = "dashboard"

urlpatterns = [
    path("cards/", views.cards, name="cards"),
    path("alerts/", views.alerts, name="alerts"),
    path("incidents/", views.incidents, name="incidents"),
    path("demo-storm/", views.demo_storm, name="demo_storm"),
    path("preferences/", preferences.preferences, name="preferences"),
]
