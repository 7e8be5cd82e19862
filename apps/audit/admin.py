from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.admin_site import MSPModelAdmin
from apps.audit.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(MSPModelAdmin):
    """Read-only: audit records are never added, changed or deleted by hand."""

    list_display = (
        "created_at",
        "actor_repr",
        "action",
        "company_repr",
        "target_repr",
        "source_ip",
    )
    list_filter = ("action", "company")
    search_fields = ("actor_repr", "target_repr", "company_repr", "target_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditLog._meta.fields]
    list_select_related = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
