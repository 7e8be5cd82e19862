from django.urls import path

from apps.oncall import views

app_name = "oncall"

urlpatterns = [
    path("", views.oncall_index, name="index"),
    path("ack/<str:token>/", views.ack_link, name="ack_link"),
    path("<slug:slug>/", views.oncall_company, name="company"),
    path("<slug:slug>/overrides/", views.override_add, name="override_add"),
]
