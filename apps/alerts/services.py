"""Storing a webhook delivery's alerts: once, in one transaction, correlation after commit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.models import Alert, Delivery
from apps.incidents.tasks import schedule_correlation
from apps.tenants.models import Company

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class IngestResult:
    alert_ids: list[int]
    duplicate: bool


def default_fingerprint(alert: NormalizedAlert) -> str:
    """For sources without their own dedup id: the same asset, signature and tool."""
    basis = f"{alert.asset_name}\x1f{alert.signature}\x1f{alert.tool_source}"
    return "aw:" + hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()


def _build(
    *, company: Company, alert: NormalizedAlert, source: str, delivery_id: str, now: datetime
) -> Alert:
    return Alert(
        company=company,
        asset_name=alert.asset_name,
        signature=alert.signature,
        severity=alert.severity,
        message=alert.message,
        tool_source=alert.tool_source,
        source=source,
        status=alert.status,
        fingerprint=alert.fingerprint or default_fingerprint(alert),
        delivery_id=delivery_id,
        event_time=alert.event_time or now,
        received_at=now,
        labels=alert.labels,
        raw=alert.raw,
    )


def alerts_ingest(
    *,
    company: Company,
    alerts: list[NormalizedAlert],
    source: str,
    delivery_id: str,
    received_at: datetime,
) -> IngestResult:
    """Store ``alerts`` for ``company``; a repeated ``delivery_id`` stores nothing and returns
    the first delivery's alert ids, even when the two race (the unique constraint decides)."""
    for _ in range(3):
        try:
            with transaction.atomic():
                stored = Alert.objects.bulk_create(
                    [
                        _build(
                            company=company,
                            alert=a,
                            source=source,
                            delivery_id=delivery_id,
                            now=received_at,
                        )
                        for a in alerts
                    ]
                )
                ids = [a.pk for a in stored]
                if delivery_id:
                    Delivery.objects.create(
                        company=company,
                        delivery_id=delivery_id,
                        received_at=received_at,
                        alert_ids=ids,
                    )
                if ids:
                    transaction.on_commit(lambda: schedule_correlation(company.pk))
            return IngestResult(alert_ids=ids, duplicate=False)
        except IntegrityError:
            first = Delivery.objects.filter(company=company, delivery_id=delivery_id).first()
            if first is None:
                raise
            if first.received_at >= received_at - IDEMPOTENCY_WINDOW:
                return IngestResult(alert_ids=first.alert_ids, duplicate=True)
            Delivery.objects.filter(pk=first.pk, received_at=first.received_at).delete()
    raise IntegrityError(f"Delivery {delivery_id!r} kept conflicting.")


def deliveries_purge(*, now: datetime) -> int:
    """Forget delivery ids older than the idempotency window."""
    deleted, _ = Delivery.objects.filter(received_at__lt=now - IDEMPOTENCY_WINDOW).delete()
    return deleted
