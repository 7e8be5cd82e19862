"""Alerts in Django admin, for MSP admins: read-only, with the quarantined alerts (those the
correlation sweep could not process alone) one filter away, their error shown, and an
action that gives them back to correlation once their cause is fixed."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.admin_site import MSPModelAdmin
from apps.alerts.models import Alert
from apps.alerts.services import alerts_release


class CorrelationFilter(admin.SimpleListFilter):
    title = "correlation"
    parameter_name = "correlation"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [
            ("quarantined", "Quarantined"),
            ("pending", "Not yet correlated"),
            ("correlated", "Correlated"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Alert]) -> QuerySet[Alert]:
        if self.value() == "quarantined":
            return queryset.filter(quarantined_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(correlated_at__isnull=True, quarantined_at__isnull=True)
        if self.value() == "correlated":
            return queryset.filter(correlated_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(MSPModelAdmin):
    list_display = (
        "event_time",
        "company",
        "asset_name",
        "signature",
        "severity",
        "status",
        "source",
        "repeat_count",
        "last_seen_at",
        "correlated_at",
        "quarantined_at",
        "quarantine_error",
    )
    list_filter = (CorrelationFilter, "source", "status")
    list_select_related = ("company",)
    search_fields = ("asset_name", "signature", "fingerprint", "delivery_id")
    readonly_fields = [f.name for f in Alert._meta.fields]
    actions = ("release",)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Release the selected quarantined alerts to correlation")
    def release(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        released = alerts_release(alert_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            f"{released} alert(s) released; they are correlated again now. An alert that "
            "still fails is quarantined again with its new error.",
            messages.SUCCESS,
        )
