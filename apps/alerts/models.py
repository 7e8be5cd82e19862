"""Alerts as received, one row per alert, and the deliveries that carried them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.alerts.choices import AlertStatus, Severity


class Delivery(models.Model):
    """One webhook request that named an ``X-Delivery-ID``: the idempotency record.

    The unique constraint makes a retried or racing delivery find the first one's alerts
    instead of storing them twice. Rows older than 24 hours are purged periodically.
    """

    company = models.ForeignKey("tenants.Company", on_delete=models.CASCADE, related_name="+")
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(db_index=True)
    alert_ids = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "delivery_id"], name="delivery_once")
        ]

    def __str__(self) -> str:
        return self.delivery_id


class Alert(models.Model):
    # No single-column indexes on company and incident: the composite indexes below start
    # with them, and every index costs each insert and each correlation update.
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="alerts", db_index=False
    )
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
        db_index=False,
    )
    asset = models.ForeignKey(
        "tenants.Asset", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    asset_name = models.CharField(max_length=255)
    signature = models.CharField(max_length=255)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    message = models.TextField(blank=True)
    tool_source = models.CharField(max_length=100)
    source = models.CharField(max_length=20, help_text="Adapter that parsed it.")
    status = models.CharField(max_length=10, choices=AlertStatus.choices)
    fingerprint = models.CharField(max_length=255)
    delivery_id = models.CharField(max_length=200, blank=True)
    event_time = models.DateTimeField()
    received_at = models.DateTimeField()
    correlated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="For a firing alert: when a resolved alert closed it."
    )
    labels = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(
        default=list, blank=True, help_text="What was changed to store it, in plain words."
    )
    quarantined_at = models.DateTimeField(
        null=True, blank=True, help_text="Set aside after correlation failed on it alone."
    )
    quarantine_error = models.TextField(blank=True, db_default="")

    class Meta:
        ordering = ["-event_time", "-id"]
        indexes = [
            models.Index(
                fields=["company", "event_time", "id"],
                condition=Q(correlated_at__isnull=True, quarantined_at__isnull=True),
                name="alert_uncorrelated",
            ),
            models.Index(
                fields=["company", "fingerprint"],
                condition=Q(status="firing", resolved_at__isnull=True),
                name="alert_open_fingerprint",
            ),
            models.Index(fields=["company", "-event_time"], name="alert_company_time"),
            models.Index(fields=["incident", "event_time"], name="alert_incident_time"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_name} {self.signature} ({self.severity}, {self.status})"
