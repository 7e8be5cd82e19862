from django.urls import path

from apps.accounts import team_views

app_name = "team"

urlpatterns = [
    path("", team_views.team_list, name="list"),
    path("new/", team_views.team_create, name="create"),
    path("<int:pk>/edit/", team_views.team_edit, name="edit"),
    path("<int:pk>/deactivate/", team_views.team_deactivate, name="deactivate"),
]
