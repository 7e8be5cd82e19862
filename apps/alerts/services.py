"""Storing a webhook delivery's alerts: once, in one transaction, correlation after commit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.db import IntegrityError, connection, transaction

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.models import Alert, Delivery
from apps.common.db import binding_cursor, is_postgresql, unnest
from apps.incidents.tasks import schedule_correlation
from apps.tenants.models import Company

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# Event times are trusted within these bounds of the receipt time; outside them the alert is
# stored with its receipt time and a warning (docs/decisions.md, "Poison input").
EVENT_TIME_PAST = timedelta(days=30)
EVENT_TIME_FUTURE = timedelta(minutes=5)
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
    "warnings",
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    alert_ids: list[int]
    duplicate: bool
    # Alerts stored with a change: {"index": n, "warnings": ["..."]}.
    warnings: list[dict] = field(default_factory=list)


def default_fingerprint(alert: NormalizedAlert) -> str:
    """For sources without their own dedup id: the same asset, signature and tool."""
    basis = f"{alert.asset_name}\x1f{alert.signature}\x1f{alert.tool_source}"
    return "aw:" + hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()


def _row(
    *, company: Company, alert: NormalizedAlert, source: str, delivery_id: str, now: datetime
) -> SimpleNamespace:
    """The stored alert's column values, as attributes named like the model's: plain
    values, cheaper than model instances on the hot path."""
    event_time, warnings = bounded_event_time(alert, received_at=now)
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
        event_time=event_time,
        received_at=now,
        labels=alert.labels,
        raw=alert.raw,
        warnings=warnings,
    )


def bounded_event_time(
    alert: NormalizedAlert, *, received_at: datetime
) -> tuple[datetime, list[str]]:
    """The event time to store and the warnings it needs: the alert's own when it lies
    between EVENT_TIME_PAST before the receipt and EVENT_TIME_FUTURE after it, else the
    receipt time (the original stays in the raw payload and in the warning)."""
    warnings = list(alert.warnings)
    event_time = alert.event_time
    if event_time is None:
        return received_at, warnings
    if not received_at - EVENT_TIME_PAST <= event_time <= received_at + EVENT_TIME_FUTURE:
        warnings.append(
            f"The event time {event_time.isoformat()} is more than {EVENT_TIME_PAST.days} days "
            f"before or {EVENT_TIME_FUTURE.seconds // 60} minutes after its receipt; "
            "the time of receipt was used."
        )
        return received_at, warnings
    return event_time, warnings


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
                return IngestResult(
                    alert_ids=first.alert_ids,
                    duplicate=True,
                    warnings=_stored_warnings(first.alert_ids),
                )
            Delivery.objects.filter(pk=first.pk, received_at=first.received_at).delete()
            continue
        if ids:
            transaction.on_commit(lambda: schedule_correlation(company.pk), robust=True)
        warnings = [
            {"index": index, "warnings": row.warnings}
            for index, row in enumerate(rows)
            if row.warnings
        ]
        return IngestResult(alert_ids=ids, duplicate=False, warnings=warnings)
    raise IntegrityError(f"Delivery {delivery_id!r} kept conflicting.")


def _stored_warnings(alert_ids: list[int]) -> list[dict]:
    """The warnings of a delivery's stored alerts, so that a retry gets the first answer."""
    warned = dict(
        Alert.objects.filter(pk__in=alert_ids).exclude(warnings=[]).values_list("id", "warnings")
    )
    return [
        {"index": index, "warnings": warned[pk]}
        for index, pk in enumerate(alert_ids)
        if pk in warned
    ]


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


def alerts_release(*, alert_ids: list[int]) -> int:
    """Give quarantined alerts back to correlation (once their cause is fixed); returns how
    many were released. Their companies are swept after commit."""
    alerts = Alert.objects.filter(pk__in=alert_ids, quarantined_at__isnull=False)
    company_ids = set(alerts.values_list("company_id", flat=True))
    released = alerts.update(quarantined_at=None, quarantine_error="")
    for company_id in company_ids:
        transaction.on_commit(lambda company_id=company_id: schedule_correlation(company_id))
    return released


def deliveries_purge(*, now: datetime) -> int:
    """Forget delivery ids older than the idempotency window."""
    deleted, _ = Delivery.objects.filter(received_at__lt=now - IDEMPOTENCY_WINDOW).delete()
    return deleted
