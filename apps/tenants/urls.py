from django.urls import path

from apps.tenants import views

app_name = "tenants"

urlpatterns = [
    path("", views.company_list, name="company_list"),
    path("new/", views.company_create, name="company_create"),
    path("<slug:slug>/", views.company_detail, name="company_detail"),
    path("<slug:slug>/settings/", views.company_settings, name="company_settings"),
    path("<slug:slug>/settings/hmac/enable/", views.hmac_enable, name="hmac_enable"),
    path("<slug:slug>/settings/hmac/disable/", views.hmac_disable, name="hmac_disable"),
    path("<slug:slug>/api-key/regenerate/", views.api_key_regenerate, name="api_key_regenerate"),
    path("<slug:slug>/assets/new/", views.asset_edit, name="asset_create"),
    path("<slug:slug>/assets/<int:pk>/", views.asset_detail, name="asset_detail"),
    path("<slug:slug>/assets/<int:pk>/edit/", views.asset_edit, name="asset_edit"),
    path(
        "<slug:slug>/assets/<int:pk>/dependencies/",
        views.asset_dependency_add,
        name="asset_dependency_add",
    ),
    path(
        "<slug:slug>/assets/<int:pk>/dependencies/<int:edge_pk>/delete/",
        views.asset_dependency_remove,
        name="asset_dependency_remove",
    ),
    path("<slug:slug>/assets/<int:pk>/delete/", views.asset_delete, name="asset_delete"),
    path("<slug:slug>/maintenance/new/", views.window_create, name="window_create"),
    path("<slug:slug>/maintenance/<int:pk>/delete/", views.window_delete, name="window_delete"),
]
