from django.urls import path

from apps.runbooks import views

app_name = "runbooks"

urlpatterns = [
    path("", views.runbook_list, name="runbook_list"),
    path("new/", views.runbook_create, name="runbook_create"),
    path("import/", views.runbook_import, name="runbook_import"),
    path("export.yaml", views.runbooks_export, name="runbooks_export"),
    path("<int:pk>/edit/", views.runbook_edit, name="runbook_edit"),
    path("<int:pk>/delete/", views.runbook_delete, name="runbook_delete"),
    path("<int:pk>/disable/", views.runbook_disable, name="runbook_disable"),
    path("<int:pk>/export.yaml", views.runbook_export, name="runbook_export"),
    path("aws/<slug:slug>/", views.aws_link, name="aws_link"),
    path("aws/<slug:slug>/test/", views.aws_link_test, name="aws_link_test"),
    path("aws/<slug:slug>/regenerate/", views.aws_link_regenerate, name="aws_link_regenerate"),
    path("aws/<slug:slug>/hybrid/", views.hybrid_onboarding, name="hybrid"),
    path("aws/<slug:slug>/hybrid/activate/", views.hybrid_activate, name="hybrid_activate"),
    path("aws/<slug:slug>/hybrid/adopt/", views.hybrid_adopt, name="hybrid_adopt"),
    path("aws/<slug:slug>/assets/<int:pk>/session/", views.session_open, name="session_open"),
]
