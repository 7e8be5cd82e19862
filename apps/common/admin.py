"""API tokens in Django admin: authtoken's own admin, with permissions from the MSP Admin
role so MSP admins (who are not superusers) can issue and revoke tokens."""

from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from apps.accounts.admin_site import MSPRolePermissions

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class MSPTokenAdmin(MSPRolePermissions, TokenAdmin):
    autocomplete_fields = ("user",)
