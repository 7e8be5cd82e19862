from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.runbooks.choices import Risk


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class ApprovalRequest(models.Model):
    """A request to run a runbook that its risk does not let run unattended.

    Medium risk: a Company Admin of the company or an MSP Admin decides; high risk: MSP
    Admins only. Nobody decides their own request; a request expires after an hour.
    """

    company = models.ForeignKey("tenants.Company", on_delete=models.CASCADE, related_name="+")
    execution = models.OneToOneField(
        "runbooks.RunbookExecution", on_delete=models.CASCADE, related_name="approval"
    )
    risk = models.CharField(max_length=10, choices=Risk.choices)
    status = models.CharField(
        max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="approval_pending_expiry"),
            models.Index(fields=["company", "status"], name="approval_company_status"),
        ]

    def __str__(self) -> str:
        return f"Approval #{self.pk} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.status == ApprovalStatus.PENDING and timezone.now() >= self.expires_at
