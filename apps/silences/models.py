"""Silences and snoozes: ways to stop hearing about something for a while without losing it.

A **silence** is a rule of one company, like Alertmanager's: matchers (host, signature,
labels; empty means any), an expiry and a reason. A **snooze** quiets one incident until a
time. Neither touches ingestion or correlation: alerts are stored, correlated and counted
as always; a silence or snooze only marks them on the pages and holds back the critical
notifications of the incidents they cover.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Silence(models.Model):
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="silences", db_index=False
    )
    asset_name = models.CharField(max_length=255, blank=True, help_text="Empty: any host.")
    signature = models.CharField(max_length=255, blank=True, help_text="Empty: any signature.")
    labels = models.JSONField(
        default=dict, blank=True, help_text="Every one must be on the alert; empty: any."
    )
    reason = models.CharField(max_length=500)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    expired_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when someone ended it early."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["company", "ends_at"], name="silence_company_end")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="silence_ends_after"
            )
        ]

    def __str__(self) -> str:
        return f"Silence #{self.pk} ({self.matcher_text})"

    @property
    def matcher_text(self) -> str:
        parts = [f"host={self.asset_name}"] if self.asset_name else []
        if self.signature:
            parts.append(f"signature={self.signature}")
        parts.extend(f"{key}={value}" for key, value in sorted(self.labels.items()))
        return ", ".join(parts) or "everything"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.expired_at is None and self.starts_at <= now < self.ends_at

    def matches(self, *, company_id: int, asset_name: str, signature: str, labels: dict) -> bool:
        return (
            company_id == self.company_id
            and (not self.asset_name or self.asset_name.lower() == asset_name.lower())
            and (not self.signature or self.signature.lower() == signature.lower())
            and all(str(labels.get(key)) == str(value) for key, value in self.labels.items())
        )


class Snooze(models.Model):
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, related_name="snoozes"
    )
    until = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Woken early.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["incident", "until"], name="snooze_incident_until")]

    def __str__(self) -> str:
        return f"Snooze of #{self.incident_id} until {self.until:%Y-%m-%d %H:%M}"
