"""Patch compliance: each sync of a company with AWS Systems Manager, and what it saw of
every managed instance.

A successful sync run holds one snapshot per instance Systems Manager manages, so a
company's current figures are the snapshots of its latest successful run: the latest
snapshot of every instance still managed (a deregistered instance drops out). The run also
keeps its totals, from which the 30-day trend is read without scanning a month of
snapshots.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class SyncRun(models.Model):
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="compliance_runs"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who asked for the sync; empty for the hourly one.",
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    error = models.TextField(blank=True, help_text="Why the sync failed, in plain words.")
    error_code = models.CharField(max_length=100, blank=True)
    warning = models.TextField(
        blank=True, help_text="Something the sync could not read, though it succeeded."
    )
    instance_count = models.PositiveIntegerField(default=0)
    compliant_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-finished_at"], name="compliance_run_latest"),
            models.Index(
                fields=["company", "-finished_at"],
                condition=Q(ok=True),
                name="compliance_run_ok_latest",
            ),
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.ok else "failed"
        return f"Compliance sync of {self.company} at {self.finished_at:%Y-%m-%d %H:%M} ({outcome})"


class InstanceSnapshot(models.Model):
    """One managed instance (EC2 ``i-…`` or hybrid ``mi-…``) as one sync run saw it."""

    company = models.ForeignKey("tenants.Company", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(
        SyncRun, on_delete=models.CASCADE, related_name="snapshots", db_index=False
    )
    instance_id = models.CharField(max_length=32)
    name = models.CharField(max_length=256, blank=True)
    platform = models.CharField(max_length=200, blank=True)
    ping_status = models.CharField(max_length=20, blank=True)
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.UNKNOWN
    )
    patch_group = models.CharField(max_length=256, blank=True)
    compliant = models.BooleanField()
    critical_missing = models.PositiveIntegerField(
        default=0, help_text="CriticalNonCompliantCount."
    )
    high_missing = models.PositiveIntegerField(default=0, help_text="SecurityNonCompliantCount.")
    other_missing = models.PositiveIntegerField(default=0, help_text="OtherNonCompliantCount.")
    missing_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    last_scan_at = models.DateTimeField(
        null=True, blank=True, help_text="End of Patch Manager's last scan or install."
    )
    captured_at = models.DateTimeField()

    class Meta:
        ordering = ["instance_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "instance_id"], name="compliance_snapshot_once_per_run"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} at {self.captured_at:%Y-%m-%d %H:%M}"

    @property
    def is_hybrid(self) -> bool:
        return self.instance_id.startswith("mi-")


class ComplianceExport(models.Model):
    """One daily export of a company's compliance snapshot (CSV and JSON) to the S3 bucket
    of its AWS link."""

    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="compliance_exports"
    )
    day = models.DateField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    error = models.TextField(blank=True)
    bucket = models.CharField(max_length=63)
    keys = models.JSONField(default=list, blank=True)
    instance_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-finished_at"], name="compliance_export_latest")
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.ok else "failed"
        return f"Compliance export of {self.company} for {self.day} ({outcome})"
