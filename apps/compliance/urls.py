from django.urls import path

from apps.compliance import views

app_name = "compliance"

urlpatterns = [
    path("", views.index, name="index"),
    path("instances/", views.instances, name="instances"),
    path("<slug:slug>/card/", views.card, name="card"),
    path("<slug:slug>/sync/", views.sync, name="sync"),
]
