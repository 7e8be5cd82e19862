from django.contrib import admin

from apps.accounts.admin_site import MSPModelAdmin
from apps.heartbeats.models import Heartbeat


@admin.register(Heartbeat)
class HeartbeatAdmin(MSPModelAdmin):
    list_display = ("name", "company", "state", "last_ping_at", "interval", "grace", "alert_name")
    list_filter = ("state",)
    list_select_related = ("company",)
    search_fields = ("name", "company__name", "alert_name")
    readonly_fields = ("token", "token_hash", "state", "last_ping_at", "down_since", "created_at")
