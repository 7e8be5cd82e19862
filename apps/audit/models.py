"""The append-only audit log.

Rows are only ever inserted: the model and its queryset refuse updates and deletes, and on
PostgreSQL a trigger refuses them in the database too. Foreign keys carry no database
constraint, so deleting a user or a company never touches (or cascades into) its history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.audit.choices import AuditAction


class AuditLogImmutable(Exception):
    """Raised on any attempt to change or remove an audit record."""


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("Audit records are append-only: they cannot be updated.")

    def delete(self):
        raise AuditLogImmutable("Audit records are append-only: they cannot be deleted.")

    def _raw_delete(self, using):
        raise AuditLogImmutable("Audit records are append-only: they cannot be deleted.")


class AuditLog(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_repr = models.CharField("actor", max_length=255, blank=True)
    company = models.ForeignKey(
        "tenants.Company",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    company_repr = models.CharField("company name", max_length=200, blank=True)
    action = models.CharField(max_length=50, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField("target", max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="audit_company_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_repr or 'system'} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogImmutable("Audit records are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("Audit records are append-only: they cannot be deleted.")
