"""The Django admin site, for MSP admins only."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest

from apps.accounts.permissions import is_msp_admin
from apps.accounts.throttle import login_refused, refusal_message


class MSPAdminAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": "Please enter the email and password of an MSP admin account.",
    }

    def clean(self):
        refused = login_refused(self.request, str(self.data.get("username", "")))
        if refused is not None:
            raise forms.ValidationError(refusal_message(refused), code="throttled")
        return super().clean()

    def confirm_login_allowed(self, user) -> None:
        if not user.is_active or not is_msp_admin(user):
            raise forms.ValidationError(
                "Administration is for MSP admins. Use the main site instead.",
                code="invalid_login",
            )


class MSPAdminSite(admin.AdminSite):
    site_header = "Alert Whisperer administration"
    site_title = "Alert Whisperer admin"
    index_title = "MSP administration"
    login_form = MSPAdminAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return is_msp_admin(request.user)


class MSPRolePermissions:
    """Admin permissions from the MSP Admin role instead of per-model permissions; mixed
    into model admins and inlines alike."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_msp_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_msp_admin(request.user)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_msp_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_msp_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_msp_admin(request.user)


class MSPModelAdmin(MSPRolePermissions, admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False
