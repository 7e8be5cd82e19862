"""Storing a webhook delivery's alerts: once, in one transaction, correlation after commit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.db import IntegrityError, connection, transaction

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.models import Alert, Delivery
from apps.common.db import binding_cursor, is_postgresql, unnest
from apps.incidents.tasks import schedule_correlation
from apps.tenants.models import Company

IDEMPOTENCY_WINDOW = timedelta(hours=24)
INSERT_FIELDS = (
    "company",
    "asset_name",
    "signature",
    "severity",
    "message",
    "tool_source",
    "source",
    "status",
    "fingerprint",
    "delivery_id",
    "event_time",
    "received_at",
    "labels",
    "raw",
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    alert_ids: list[int]
    duplicate: bool


def default_fingerprint(alert: NormalizedAlert) -> str:
    """For sources without their own dedup id: the same asset, signature and tool."""
    basis = f"{alert.asset_name}\x1f{alert.signature}\x1f{alert.tool_source}"
    return "aw:" + hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()


def _row(
    *, company: Company, alert: NormalizedAlert, source: str, delivery_id: str, now: datetime
) -> SimpleNamespace:
    """The stored alert's column values, as attributes named like the model's: plain
    values, cheaper than model instances on the hot path."""
    return SimpleNamespace(
        company_id=company.pk,
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
    rows = [
        _row(company=company, alert=a, source=source, delivery_id=delivery_id, now=received_at)
        for a in alerts
    ]
    for _ in range(3):
        try:
            ids = _store(rows, company=company, delivery_id=delivery_id, received_at=received_at)
        except IntegrityError:
            first = Delivery.objects.filter(company=company, delivery_id=delivery_id).first()
            if first is None:
                raise
            if first.received_at >= received_at - IDEMPOTENCY_WINDOW:
                return IngestResult(alert_ids=first.alert_ids, duplicate=True)
            Delivery.objects.filter(pk=first.pk, received_at=first.received_at).delete()
            continue
        if ids:
            transaction.on_commit(lambda: schedule_correlation(company.pk), robust=True)
        return IngestResult(alert_ids=ids, duplicate=False)
    raise IntegrityError(f"Delivery {delivery_id!r} kept conflicting.")


def _store(
    rows: list[SimpleNamespace], *, company: Company, delivery_id: str, received_at: datetime
) -> list[int]:
    """Insert the alerts and the delivery record together: all or nothing."""
    if not is_postgresql(Alert):
        with transaction.atomic():
            ids = [a.pk for a in Alert.objects.bulk_create(Alert(**vars(row)) for row in rows)]
            if delivery_id:
                Delivery.objects.create(
                    company=company, delivery_id=delivery_id, received_at=received_at, alert_ids=ids
                )
            return ids
    if connection.in_atomic_block:
        # Inside a caller's transaction: a savepoint, so that a conflict leaves it usable.
        with transaction.atomic():
            return _insert(rows, company=company, delivery_id=delivery_id, received_at=received_at)
    return _insert(rows, company=company, delivery_id=delivery_id, received_at=received_at)


def _insert(
    rows: list[SimpleNamespace], *, company: Company, delivery_id: str, received_at: datetime
) -> list[int]:
    """One statement (so, in autocommit, one round trip and its own transaction): the
    alerts from one array per column, and the delivery record holding their ids."""
    values = unnest(Alert, rows, INSERT_FIELDS, connection)
    insert = (
        f'INSERT INTO "{Alert._meta.db_table}" ({values.names}) '  # noqa: S608
        f'SELECT * FROM {values.sql} RETURNING "id"'
    )
    with binding_cursor(connection) as cursor:
        if not delivery_id:
            cursor.execute(insert, values.params)
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"WITH a AS ({insert}), d AS ("  # noqa: S608
            f'INSERT INTO "{Delivery._meta.db_table}" '
            '("company_id", "delivery_id", "received_at", "alert_ids") '
            "SELECT %s, %s, %s, coalesce(jsonb_agg(id ORDER BY id), '[]') FROM a"
            ") SELECT id FROM a ORDER BY id",
            [*values.params, company.pk, delivery_id, received_at],
        )
        return [row[0] for row in cursor.fetchall()]


def deliveries_purge(*, now: datetime) -> int:
    """Forget delivery ids older than the idempotency window."""
    deleted, _ = Delivery.objects.filter(received_at__lt=now - IDEMPOTENCY_WINDOW).delete()
    return deleted
