"""The delivery log and the channels in the Django admin (MSP admins). Targets and secrets
are never shown: only their masked hint."""

from django.contrib import admin

from apps.accounts.admin_site import MSPModelAdmin
from apps.notifications.models import Channel, Delivery


@admin.register(Channel)
class ChannelAdmin(MSPModelAdmin):
    list_display = ("name", "kind", "owner", "company", "target_hint", "enabled", "failing_since")
    list_filter = ("kind", "enabled")
    list_select_related = ("owner", "company")
    search_fields = ("name", "owner__email", "company__name")
    fields = (
        "name",
        "kind",
        "owner",
        "company",
        "target_hint",
        "min_severity",
        "kinds",
        "quiet_start",
        "quiet_end",
        "critical_overrides_quiet",
        "enabled",
        "failing_since",
        "last_error",
        "created_by",
        "created_at",
    )
    readonly_fields = (
        "kind",
        "owner",
        "company",
        "target_hint",
        "failing_since",
        "last_error",
        "created_by",
        "created_at",
    )


@admin.register(Delivery)
class DeliveryAdmin(MSPModelAdmin):
    list_display = (
        "created_at",
        "status",
        "channel",
        "recipient",
        "incident_id",
        "title",
        "attempts",
        "last_error",
    )
    list_filter = ("status", "channel__kind", "is_digest")
    list_select_related = ("channel", "recipient")
    search_fields = ("title", "recipient__email", "channel__name", "last_error")
    date_hierarchy = "created_at"
    exclude = ("ack_url_encrypted",)
    readonly_fields = [
        f.name for f in Delivery._meta.fields if f.name not in {"id", "ack_url_encrypted"}
    ]

    def has_add_permission(self, request) -> bool:
        return False
