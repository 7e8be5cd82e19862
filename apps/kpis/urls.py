from django.urls import path

from apps.kpis import views

app_name = "kpis"

urlpatterns = [
    path("", views.kpi_page, name="index"),
    path("export/<slug:table>.csv", views.kpi_export, name="export"),
]
