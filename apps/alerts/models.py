"""Alerts as received, one row per occurrence, and the deliveries that carried them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.alerts.choices import AlertStatus, Severity

DELIVERY_IDS_KEPT = 100
# Which rows a re-notification may merge into: a firing alert until a resolved one closes
# it, a resolved alert until correlation has used it (after that a resolve with the same
# key, a PagerDuty dedup_key reused for a new trigger say, is a new occurrence).
MERGEABLE = ~Q(occurrence_key="") & (
    Q(status="firing", resolved_at__isnull=True) | Q(status="resolved", correlated_at__isnull=True)
)


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


class Occurrence(models.Model):
    """Which alert a re-notification merges into: one row per (company, source, occurrence
    key), pointing at the latest alert stored with that key. Not partitioned, so its primary
    key makes two racing repeats one alert even when their event times fall in different
    months. The pointer is followed only while that alert is mergeable (``MERGEABLE``); a
    stale one is moved to the next alert stored with the key (apps/alerts/services.py)."""

    pk = models.CompositePrimaryKey("company", "source", "occurrence_key")
    # No database constraint: its check would cost each new alert a second lookup (and
    # share-lock) of the company row, after the alert's own. Django deletes a company's
    # occurrences with it.
    company = models.ForeignKey(
        "tenants.Company",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    source = models.CharField(max_length=20)
    occurrence_key = models.CharField(max_length=40)
    # No foreign key: the alerts' primary key is (id, event_time) and partitions are
    # dropped whole; both columns together find the alert in its month's partition.
    alert_id = models.BigIntegerField()
    event_time = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.source} {self.occurrence_key} -> {self.alert_id}"


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
    # Indexed by ``alert_asset`` below, without the alerts that have none.
    asset = models.ForeignKey(
        "tenants.Asset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
        db_index=False,
    )
    asset_name = models.CharField(max_length=255)
    signature = models.CharField(max_length=255)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    message = models.TextField(blank=True)
    tool_source = models.CharField(max_length=100)
    source = models.CharField(max_length=20, help_text="Adapter that parsed it.")
    status = models.CharField(max_length=10, choices=AlertStatus.choices)
    fingerprint = models.CharField(max_length=255)
    delivery_id = models.CharField(
        max_length=200, blank=True, help_text="The X-Delivery-ID of the first delivery."
    )
    # The occurrence identity (docs/decisions.md, "Repeat notifications"): a re-notification
    # with the same key updates this row instead of adding one. Empty: never merged.
    occurrence_key = models.CharField(max_length=40, blank=True, db_default="")
    repeat_count = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Re-notifications merged into this alert."
    )
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="When the latest notification of it arrived."
    )
    delivery_ids = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text=f"The latest {DELIVERY_IDS_KEPT} deliveries that carried it, oldest first.",
    )
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
        # On PostgreSQL the table is partitioned by month of event time and its primary key
        # is (id, event_time); ids stay unique, from one sequence (docs/decisions.md,
        # "Alerts partitioned by month"). A unique index there must hold the event time, so
        # the occurrence's uniqueness lives in Occurrence.
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
            # The lists and the API page through all companies newest first by keyset
            # (docs/decisions.md, "Pages that stay fast at ten million alerts").
            models.Index(fields=["-event_time", "-id"], name="alert_time_id"),
            # The covered columns let the dashboard count an open incident's active alerts
            # by severity from the index alone (apps/dashboard/selectors.py).
            models.Index(
                fields=["incident", "event_time"],
                include=["severity", "status", "resolved_at"],
                condition=Q(incident__isnull=False),
                name="alert_incident_time",
            ),
            # What deleting an asset sets to NULL.
            models.Index(fields=["asset"], condition=Q(asset__isnull=False), name="alert_asset"),
            # The few quarantined alerts: the platform watchdog and the admin's filter.
            models.Index(
                fields=["quarantined_at"],
                condition=Q(quarantined_at__isnull=False),
                name="alert_quarantined",
            ),
        ]
        # The two indexes on foreign keys leave out NULL: no query looks alerts up by a
        # missing incident or asset, and every alert is stored with neither, so the webhook's
        # insert skips both (correlation sets them; docs/decisions.md, "Ingest CPU").

    def __str__(self) -> str:
        return f"{self.asset_name} {self.signature} ({self.severity}, {self.status})"
