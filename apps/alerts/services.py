"""Storing a webhook delivery's alerts: once, in one transaction, correlation after commit.

A re-notification of a stored occurrence (same company, source and occurrence key: status,
fingerprint and the adapter's ``occurrence``) updates that alert in the same statement
(``INSERT … ON CONFLICT … DO UPDATE``): repeat count, last seen, latest values and the
delivery id. docs/decisions.md, "Repeat notifications" and "Alerts partitioned by month"
(the occurrences' own table, which keeps that across the months' partitions)."""

from __future__ import annotations

import functools
import hashlib
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.db import IntegrityError, connection, transaction
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from psycopg.types.json import Jsonb

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.adapters.base import build_alert
from apps.alerts.models import DELIVERY_IDS_KEPT, MERGEABLE, Alert, Delivery, Occurrence
from apps.audit.services import record
from apps.common.db import is_postgresql, unnest, unnest_sql
from apps.common.errors import ValidationError, error_summary
from apps.incidents.choices import OPEN_STATUSES
from apps.incidents.services import incident_acknowledge
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
    "occurrence_key",
    "repeat_count",
    "correlated_at",
)
# What a re-notification replaces in the stored alert; the rest (asset, signature, event
# time, first delivery) stays as the first notification set it.
LATEST_FIELDS = ("severity", "message", "labels", "raw", "warnings", "last_seen_at")


@dataclass(frozen=True, slots=True)
class IngestResult:
    # One per alert of the body, in its order; a re-notification has the stored alert's id.
    alert_ids: list[int]
    duplicate: bool
    # Alerts stored with a change: {"index": n, "warnings": ["..."]}.
    warnings: list[dict] = field(default_factory=list)
    # How many of the alerts were re-notifications of stored ones.
    repeats: int = 0
    # The X-Delivery-ID, or the id given to a delivery that had none: on each alert it
    # carried (``Alert.delivery_ids``).
    delivery_id: str = ""


def default_fingerprint(alert: NormalizedAlert) -> str:
    """For sources without their own dedup id: the same asset, signature and tool."""
    basis = f"{alert.asset_name}\x1f{alert.signature}\x1f{alert.tool_source}"
    return "aw:" + hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()


def occurrence_key(*, status: str, fingerprint: str, occurrence: str) -> str:
    """The stored occurrence identity; "" (never merged) when the source gives none."""
    if not occurrence:
        return ""
    basis = f"{status}\x1f{fingerprint}\x1f{occurrence}"
    return hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()


def _row(
    *,
    company: Company,
    alert: NormalizedAlert,
    source: str,
    delivery_id: str,
    trace_ids: list[str],
    now: datetime,
) -> SimpleNamespace:
    """The stored alert's column values, as attributes named like the model's: plain
    values, cheaper than model instances on the hot path."""
    event_time, warnings = bounded_event_time(alert, received_at=now)
    fingerprint = alert.fingerprint or default_fingerprint(alert)
    return SimpleNamespace(
        company_id=company.pk,
        asset_name=alert.asset_name,
        signature=alert.signature,
        severity=alert.severity,
        message=alert.message,
        tool_source=alert.tool_source,
        source=source,
        status=alert.status,
        fingerprint=fingerprint,
        delivery_id=delivery_id,
        event_time=event_time,
        received_at=now,
        labels=alert.labels,
        raw=alert.raw,
        warnings=warnings,
        occurrence_key=occurrence_key(
            status=alert.status, fingerprint=fingerprint, occurrence=alert.occurrence
        ),
        repeat_count=0,
        # A heartbeat ping (Company.ping_signatures) is stored as already correlated: it
        # feeds its heartbeat and never opens an incident.
        correlated_at=now if alert.signature in company.ping_signatures else None,
        last_seen_at=now,
        delivery_ids=trace_ids,
    )


def _distinct(rows: list[SimpleNamespace]) -> tuple[list[SimpleNamespace], list[int]]:
    """The rows to store, each occurrence once (one statement cannot update a row twice: a
    body repeating an alert counts the repeats on one row), and for each row of ``rows``
    the position of the one that stands for it."""
    keys: dict[str, int] = {}
    distinct: list[SimpleNamespace] = []
    positions: list[int] = []
    for row in rows:
        position = keys.get(row.occurrence_key) if row.occurrence_key else None
        if position is None:
            if row.occurrence_key:
                keys[row.occurrence_key] = len(distinct)
            positions.append(len(distinct))
            distinct.append(row)
            continue
        first = distinct[position]
        # The later notification's values win, as they would across deliveries.
        repeat = SimpleNamespace(**vars(row))
        repeat.repeat_count = first.repeat_count + 1
        distinct[position] = repeat
        positions.append(position)
    return distinct, positions


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
    the first delivery's alert ids, even when the two race (the unique constraint decides).
    A re-notification of a stored occurrence updates it instead (two racing ones included:
    the occurrence's unique constraint decides)."""
    trace_ids = [delivery_id or f"aw-{uuid.uuid4().hex}"]
    rows = [
        _row(
            company=company,
            alert=a,
            source=source,
            delivery_id=delivery_id,
            trace_ids=trace_ids,
            now=received_at,
        )
        for a in alerts
    ]
    distinct, positions = _distinct(rows)
    for _ in range(3):
        try:
            stored = _store(
                distinct, company=company, delivery_id=delivery_id, received_at=received_at
            )
        except IntegrityError:
            first = Delivery.objects.filter(company=company, delivery_id=delivery_id).first()
            if first is None:
                raise
            if first.received_at >= received_at - IDEMPOTENCY_WINDOW:
                return IngestResult(
                    alert_ids=first.alert_ids,
                    duplicate=True,
                    warnings=_stored_warnings(first.alert_ids),
                    delivery_id=delivery_id,
                )
            Delivery.objects.filter(pk=first.pk, received_at=first.received_at).delete()
            continue
        if any(inserted for _, inserted in stored):
            # Only new rows need correlating: a merged repeat's alert has its incident.
            transaction.on_commit(lambda: schedule_correlation(company.pk), robust=True)
        warnings = [
            {"index": index, "warnings": row.warnings}
            for index, row in enumerate(rows)
            if row.warnings
        ]
        return IngestResult(
            alert_ids=[stored[position][0] for position in positions],
            duplicate=False,
            warnings=warnings,
            repeats=len(rows) - sum(inserted for _, inserted in stored),
            delivery_id=trace_ids[0],
        )
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
) -> list[tuple[int, bool]]:
    """Insert (or merge) the alerts and the delivery record together: all or nothing. For
    each row, its alert's id and whether it was inserted."""
    if not is_postgresql(Alert):
        with transaction.atomic():
            stored = [_store_one(row) for row in rows]
            if delivery_id:
                Delivery.objects.create(
                    company=company,
                    delivery_id=delivery_id,
                    received_at=received_at,
                    alert_ids=[pk for pk, _ in stored],
                )
            return stored
    if connection.in_atomic_block:
        # Inside a caller's transaction: a savepoint, so that a conflict leaves it usable.
        with transaction.atomic():
            return _insert(rows, company=company, delivery_id=delivery_id, received_at=received_at)
    return _insert(rows, company=company, delivery_id=delivery_id, received_at=received_at)


def _store_one(row: SimpleNamespace) -> tuple[int, bool]:
    """The ORM's form of ``_insert`` for one row (SQLite, the embedded mode)."""
    if row.occurrence_key:
        stored = (
            Alert.objects.select_for_update()
            .filter(
                MERGEABLE,
                company_id=row.company_id,
                source=row.source,
                occurrence_key=row.occurrence_key,
            )
            .first()
        )
        if stored is not None:
            for name in LATEST_FIELDS:
                setattr(stored, name, getattr(row, name))
            stored.repeat_count += row.repeat_count + 1
            stored.delivery_ids = [*stored.delivery_ids, *row.delivery_ids][-DELIVERY_IDS_KEPT:]
            stored.save(update_fields=[*LATEST_FIELDS, "repeat_count", "delivery_ids"])
            return stored.pk, False
    return Alert.objects.create(**vars(row)).pk, True


# The alerts' id sequence (the identity of the partitioned table, named by the migration
# that created it: 0007_partitioned_by_month).
_ID_SEQUENCE = f"{Alert._meta.db_table}_id_seq"
# models.MERGEABLE in SQL, for a stored alert ``a`` (also in alerts_alert_closed()).
_MERGEABLE_SQL = (
    "a.occurrence_key <> '' AND ((a.status = 'firing' AND a.resolved_at IS NULL) "
    "OR (a.status = 'resolved' AND a.correlated_at IS NULL))"
)


@functools.cache
def _upsert_sql(alias: str, *, with_delivery: bool) -> str:
    """One statement: the body's rows (``v``, with their position ``n``), their occurrences
    registered (``o``), the alerts inserted or merged (``a``), and the delivery record.

    ``o`` takes each mergeable row's key in ``Occurrence``, unpartitioned: a new key gets
    the next alert id and the row's event time; a known key keeps its alert, unless that
    alert is no longer mergeable (resolved, or a resolve that correlation has used), when
    the key moves to a new id. The primary key of ``Occurrence`` decides between racing
    repeats, whatever months their event times fall in: the second waits for the first and
    then finds its alert. ``a`` inserts each row with the id and event time ``o`` gave it
    (a new id for rows without a key); a row that meets its stored alert on (id,
    event_time), the partitioned table's key, updates it as a re-notification. Rows come
    back in the body's order (``ORDER BY n``), each with its repeat count: a merged row's
    is larger than the one sent, which tells inserts from merges (``xmax`` cannot be read
    back from a partitioned table). The delivery ids are one parameter for all rows."""
    table = Alert._meta.db_table
    occurrences = Occurrence._meta.db_table
    columns, values_sql = unnest_sql(Alert, INSERT_FIELDS, alias)
    names = [f'"{column.column}"' for column in columns]
    # The rows' positions, to keep the body's order through the join.
    values_sql = values_sql.replace(" AS v(", " WITH ORDINALITY AS v(")[:-1] + ', "n")'
    latest = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in LATEST_FIELDS)
    kept = f"'$[last - {DELIVERY_IDS_KEPT - 1} to last]'"
    selected = ", ".join(
        'coalesce(o."event_time", v."event_time")' if name == '"event_time"' else f"v.{name}"
        for name in names
    )
    # A function (made by the migration 0007_partitioned_by_month): true when the alert
    # exists and is no longer mergeable. Called on a repeat only; the statement itself
    # reads no partition of alerts, so planning it does not grow with the months kept.
    stale = 'alerts_alert_closed(t."alert_id", t."event_time")'
    sql = (
        f"WITH v AS MATERIALIZED (SELECT * FROM {values_sql}), "  # noqa: S608
        f'o AS (INSERT INTO "{occurrences}" AS t '
        '("company_id", "source", "occurrence_key", "alert_id", "event_time") '
        f'SELECT "company_id", "source", "occurrence_key", nextval(\'{_ID_SEQUENCE}\'), '
        '"event_time" FROM v '
        'WHERE "occurrence_key" <> \'\' AND ("status" = \'firing\' OR "correlated_at" IS NULL) '
        'ON CONFLICT ("company_id", "source", "occurrence_key") DO UPDATE SET '
        '("alert_id", "event_time") = (SELECT '
        'CASE WHEN s.stale THEN EXCLUDED."alert_id" ELSE t."alert_id" END, '
        'CASE WHEN s.stale THEN EXCLUDED."event_time" ELSE t."event_time" END '
        # OFFSET 0: evaluated once, not copied into both CASEs.
        f"FROM (SELECT {stale} AS stale OFFSET 0) AS s) "
        'RETURNING "occurrence_key", "alert_id", "event_time"), '
        f'a AS (INSERT INTO "{table}" AS t ("id", {", ".join(names)}, "last_seen_at", '
        '"delivery_ids") '
        f"SELECT coalesce(o.\"alert_id\", nextval('{_ID_SEQUENCE}')), {selected}, "
        'v."received_at", %s FROM v LEFT JOIN o ON o."occurrence_key" = v."occurrence_key" '
        'ORDER BY v."n" '
        'ON CONFLICT ("id", "event_time") '
        f"DO UPDATE SET {latest}, "
        '"repeat_count" = t."repeat_count" + EXCLUDED."repeat_count" + 1, '
        '"delivery_ids" = jsonb_path_query_array('
        f't."delivery_ids" || EXCLUDED."delivery_ids", {kept}) '
        'RETURNING "id", "repeat_count")'
    )
    if with_delivery:
        sql += (
            f', d AS (INSERT INTO "{Delivery._meta.db_table}" '  # noqa: S608
            '("company_id", "delivery_id", "received_at", "alert_ids") '
            "SELECT %s, %s, %s, coalesce(jsonb_agg(\"id\"), '[]') FROM a)"
        )
    return sql + ' SELECT "id", "repeat_count" FROM a'  # noqa: S608


class _PreparingCursor(ServerBindingCursor):
    """Prepares its statements on the server (the connection's setting prepares none):
    planning the upsert (three data-modifying CTEs) took 0.25 ms, more than running it for
    one alert (``EXPLAIN ANALYZE``); prepared, it is planned once per connection."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


# psycopg ignores ``prepare=True`` while the connection's threshold is None, which Django
# sets by default: one it never reaches prepares what asks to be, and nothing else.
_PREPARE_ONLY_WHEN_ASKED = sys.maxsize


@contextmanager
def _prepared_cursor() -> Iterator[CursorWrapper]:
    """``apps.common.db.binding_cursor`` with a ``_PreparingCursor``."""
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        connection.connection.prepare_threshold = _PREPARE_ONLY_WHEN_ASKED
    cursor = _PreparingCursor(connection.connection)
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(cursor) as wrapped:
        yield wrapped


def _insert(
    rows: list[SimpleNamespace], *, company: Company, delivery_id: str, received_at: datetime
) -> list[tuple[int, bool]]:
    """One statement (so, in autocommit, one round trip and its own transaction): the
    alerts from one array per column, merged into their stored occurrences, and the
    delivery record holding their ids."""
    values = unnest(Alert, rows, INSERT_FIELDS, connection)
    upsert = _upsert_sql(connection.alias, with_delivery=bool(delivery_id))
    params = [*values.params, Jsonb(rows[0].delivery_ids if rows else [])]
    if delivery_id:
        params += [company.pk, delivery_id, received_at]
    with _prepared_cursor() as cursor:
        cursor.execute(upsert, params)
        stored = cursor.fetchall()
    return [
        (pk, repeat_count == row.repeat_count)
        for (pk, repeat_count), row in zip(stored, rows, strict=True)
    ]


def alerts_release(*, alert_ids: list[int]) -> int:
    """Give quarantined alerts back to correlation (once their cause is fixed); returns how
    many were released. Their companies are swept after commit."""
    alerts = Alert.objects.filter(pk__in=alert_ids, quarantined_at__isnull=False)
    company_ids = set(alerts.values_list("company_id", flat=True))
    released = alerts.update(quarantined_at=None, quarantine_error="")
    for company_id in company_ids:
        transaction.on_commit(
            lambda company_id=company_id: schedule_correlation(company_id), robust=True
        )
    return released


def sns_subscription_failed(
    *, company_id: int, topic_arn: str, error: Exception, now: datetime
) -> None:
    """ConfirmSubscription kept failing: audit it, and store an alert for the company, which
    correlation turns into an incident for its technicians (CloudWatch alarms on the topic
    will not arrive until someone confirms it)."""
    company = Company.objects.get(pk=company_id)
    reason = error_summary(error, 500)
    record(
        action="sns_subscription_failed",
        company=company,
        details={"topic_arn": topic_arn, "error": reason},
    )
    alert = build_alert(
        asset_name=topic_arn,
        signature="SNS subscription not confirmed",
        severity="high",
        message=(
            f"Confirming the SNS subscription of {topic_arn} failed after retries ({reason}). "
            "CloudWatch alarms sent to this topic will not arrive: confirm the subscription "
            "in the AWS console, or delete it and subscribe the webhook again."
        ),
        tool_source="Amazon SNS",
        status="firing",
        fingerprint=f"sns-subscription:{topic_arn}",
        event_time=now,
        labels={"topic_arn": topic_arn},
        raw={"topic_arn": topic_arn, "error": reason},
        occurrence=topic_arn,
    )
    alerts_ingest(company=company, alerts=[alert], source="sns", delivery_id="", received_at=now)


def deliveries_purge(*, now: datetime) -> int:
    """Forget delivery ids older than the idempotency window."""
    deleted, _ = Delivery.objects.filter(received_at__lt=now - IDEMPOTENCY_WINDOW).delete()
    return deleted


def occurrences_prune() -> int:
    """Forget the occurrences whose alert can no longer be merged into (closed, or deleted:
    the next repeat would move the pointer anyway); returns how many. Safe beside the
    webhook: an alert never becomes mergeable again, a pointer and its alert are written
    by one statement, and a pointer moved meanwhile no longer matches the alert id it was
    chosen with (the ``DELETE`` rechecks the row it waited for), so it stays."""
    if not is_postgresql(Alert):
        return 0
    table = Occurrence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{table}" o USING (SELECT s."company_id", s."source", '  # noqa: S608
            f's."occurrence_key", s."alert_id" FROM "{table}" s WHERE NOT EXISTS ('
            f'SELECT FROM "{Alert._meta.db_table}" a WHERE a."id" = s."alert_id" '
            f'AND a."event_time" = s."event_time" AND {_MERGEABLE_SQL})) AS gone '
            'WHERE o."company_id" = gone."company_id" AND o."source" = gone."source" '
            'AND o."occurrence_key" = gone."occurrence_key" AND o."alert_id" = gone."alert_id"'
        )
        return cursor.rowcount


# How a source that acknowledges is named on the timeline ("Acknowledged by PagerDuty event").
INTEGRATION_NAMES = {"pagerduty": "PagerDuty"}


def alerts_acknowledge(*, company: Company, source: str, fingerprint: str) -> int | None:
    """A tool acknowledged the alert ``fingerprint`` of ``source`` (a PagerDuty acknowledge):
    acknowledge the open, unacknowledged incident its latest correlated alert belongs to, as
    the integration (audited as the system; escalation stops). Returns that incident's id,
    or None when there is none: an alert not correlated yet, an incident already
    acknowledged or resolved."""
    incident_id = (
        Alert.objects.filter(
            company=company,
            source=source,
            fingerprint=fingerprint,
            incident__status__in=OPEN_STATUSES,
            incident__acknowledged_at__isnull=True,
        )
        .order_by("-pk")
        .values_list("incident_id", flat=True)
        .first()
    )
    if incident_id is None:
        return None
    try:
        incident_acknowledge(
            incident_id=incident_id, actor=None, integration=INTEGRATION_NAMES.get(source, source)
        )
    except ValidationError:
        # Acknowledged or resolved meanwhile (by someone else, or a racing event).
        return None
    return incident_id
