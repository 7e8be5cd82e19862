from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Users and roles"

    def ready(self) -> None:
        from apps.accounts import signals  # noqa: F401


class AdminConfig(admin_apps.AdminConfig):
    """Django admin, served by a site only MSP admins may enter."""

    default = False
    default_site = "apps.accounts.admin_site.MSPAdminSite"
