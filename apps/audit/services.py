"""``record()``: the one way anything writes to the audit log."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.audit.choices import AuditAction
from apps.audit.context import current_ip
from apps.audit.models import AuditLog


def record(
    *,
    action: AuditAction | str,
    actor: Any = None,
    company: Any = None,
    target: models.Model | None = None,
    details: dict | None = None,
    source_ip: str | None = None,
) -> AuditLog:
    """Append one audit record. ``actor`` is a user or None for the system."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditLog.objects.create(
        action=str(action),
        actor=actor,
        actor_repr=actor.email if actor is not None else "system",
        company=company,
        company_repr=company.name if company is not None else "",
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        details=details or {},
        source_ip=source_ip or current_ip.get(),
    )
