from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.admin_site import MSPModelAdmin
from apps.compliance.models import InstanceSnapshot, SyncRun


class ReadOnly:
    """Sync runs and snapshots are what AWS said: read them, never edit them."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnly, MSPModelAdmin):
    list_display = ("finished_at", "company", "ok", "instance_count", "compliant_count", "error")
    list_filter = ("ok", "company")
    date_hierarchy = "finished_at"
    list_select_related = ("company",)


@admin.register(InstanceSnapshot)
class InstanceSnapshotAdmin(ReadOnly, MSPModelAdmin):
    list_display = (
        "instance_id",
        "name",
        "company",
        "environment",
        "compliant",
        "critical_missing",
        "high_missing",
        "last_scan_at",
        "captured_at",
    )
    list_filter = ("compliant", "environment", "company")
    search_fields = ("instance_id", "name")
    list_select_related = ("company",)
    raw_id_fields = ("run",)
