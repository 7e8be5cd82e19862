from django.urls import path

from apps.saved_views import views

app_name = "saved_views"

urlpatterns = [
    path("", views.saved_view_create, name="create"),
    path("<int:pk>/delete/", views.saved_view_remove, name="delete"),
]
