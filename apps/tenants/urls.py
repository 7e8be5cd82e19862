from django.urls import path

from apps.tenants import views

app_name = "tenants"

urlpatterns = [
    path("<slug:slug>/", views.company_detail, name="company_detail"),
]
