"""The correlation engine: uncorrelated alerts of one company become incidents.

Rules (docs/decisions.md, "Correlation"):
- A firing alert joins the *accepting* incident of its company and aggregation key when
  that incident's latest alert is no older than the company's window before the alert's
  event time; otherwise the stale incident stops accepting and a new one opens. The
  database allows one accepting incident per (company, key).
- ``auto_correlate`` off: every firing alert opens its own incident.
- An incident stays pending (``visible`` false: not shown, not assigned) until it has
  ``min_alerts`` alerts.
- A resolved alert closes the open firing alerts of the same fingerprint whose event time
  is not after its own; when an incident has no open firing alert left, it resolves itself
  (resolution "source").
- An incident opened during a maintenance window is marked ``in_maintenance``: it is not
  assigned (nor, later, notified or auto-healed).

A sweep takes several companies at once (one drain of the pending set, one periodic sweep):
it locks their rows in id order (FOR NO KEY UPDATE, which ingest inserts do not wait for),
so two sweeps of one company never interleave, then takes their alerts in event-time order
in batches and writes each batch with a few set-based queries, whatever the number of
companies in it: a storm spread over a hundred clients costs the same queries as one.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.alerts.choices import SEVERITY_RANK, AlertStatus
from apps.alerts.models import Alert
from apps.common.db import binding_cursor, bulk_set, is_postgresql
from apps.incidents.choices import OPEN_STATUSES, EventKind, IncidentStatus, Resolution
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.scoring import priority_score
from apps.tenants.models import Asset, Company, MaintenanceWindow

logger = logging.getLogger(__name__)

BATCH_SIZE = 10000
# Failures that say nothing about the alerts: the task is retried or ends, nothing is
# quarantined.
NOT_THE_ALERTS = (OperationalError, InterfaceError, SoftTimeLimitExceeded)
# How many alerts of a failing company one call splits through at most: a company whose
# every alert fails costs about twice as many transactions, and the drain moves on.
ISOLATION_LIMIT = 100
QUARANTINE_ERROR_LENGTH = 2000
ALERT_FIELDS = (
    "id",
    "company_id",
    "asset_name",
    "signature",
    "severity",
    "tool_source",
    "status",
    "fingerprint",
    "event_time",
)
INCIDENT_UPDATE_FIELDS = [
    "accepting",
    "asset",
    "severity",
    "status",
    "visible",
    "alert_count",
    "open_alert_count",
    "tool_sources",
    "first_alert_at",
    "last_alert_at",
    "priority_score",
    "resolution",
    "resolved_at",
    "updated_at",
]
ALERT_UPDATE_FIELDS = ["incident", "asset", "resolved_at", "correlated_at"]

# (company id, aggregation key or fingerprint): every lookup of a batch is per company.
Scoped = tuple[int, str]


# The alert fields a key template can name, as attribute names.
KEY_PARTS = {
    "asset": "asset_name",
    "signature": "signature",
    "tool": "tool_source",
    "severity": "severity",
}


@dataclass(slots=True)
class _Alert:
    """An uncorrelated alert as the sweep reads it (ALERT_FIELDS) and writes it back
    (ALERT_UPDATE_FIELDS): plain attributes, not a model instance, for thousands a batch."""

    id: int
    company_id: int
    asset_name: str
    signature: str
    severity: str
    tool_source: str
    status: str
    fingerprint: str
    event_time: datetime
    incident_id: int | None = None
    asset_id: int | None = None
    resolved_at: datetime | None = None
    correlated_at: datetime | None = None


@dataclass
class SweepResult:
    alerts: int = 0
    became_visible: list[int] = field(default_factory=list)


def aggregation_key(company: Company, alert: _Alert) -> str:
    return "|".join(getattr(alert, KEY_PARTS[part]) for part in company.aggregation_key.split("|"))


def correlate_company(*, company_id: int, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Correlate every uncorrelated alert of the company, oldest event first."""
    return correlate_companies(company_ids=[company_id], batch_size=batch_size)[company_id]


def correlate_companies(
    *, company_ids: Iterable[int], batch_size: int = BATCH_SIZE
) -> dict[int, SweepResult]:
    """Correlate every uncorrelated alert of these companies, each company's oldest event
    first, in shared batches. Returns each company's result."""
    results = {company_id: SweepResult() for company_id in company_ids}
    ids = sorted(results)
    while ids:
        batch, ids = correlate_batch(company_ids=ids, batch_size=batch_size)
        for company_id, result in batch.items():
            results[company_id].alerts += result.alerts
            results[company_id].became_visible += result.became_visible
    return results


def correlate_batch(
    *, company_ids: list[int], batch_size: int = BATCH_SIZE
) -> tuple[dict[int, SweepResult], list[int]]:
    """One transaction: the oldest uncorrelated alerts of each company, about
    ``batch_size`` in all (an equal share each). Returns the results of the companies that
    had alerts, and the companies that may have more. Should it fail, the companies are
    tried one by one and the alerts that fail alone are quarantined."""
    if not company_ids:
        return {}, []
    share = max(1, batch_size // len(company_ids))
    try:
        return _correlate(company_ids, share)
    except NOT_THE_ALERTS:
        raise
    except Exception:
        logger.exception("Correlation of companies %s failed; isolating the cause.", company_ids)
    results: dict[int, SweepResult] = {}
    more: list[int] = []
    for company_id in company_ids:
        try:
            batch, again = _correlate([company_id], share)
        except NOT_THE_ALERTS:
            raise
        except Exception:
            batch, again = _isolate(company_id, share)
        results.update(batch)
        more += again
    return results, more


def _correlate(
    company_ids: list[int], share: int, alert_ids: list[int] | None = None
) -> tuple[dict[int, SweepResult], list[int]]:
    """The transaction of ``correlate_batch``; with ``alert_ids``, of those alerts only."""
    with transaction.atomic():
        if is_postgresql(Alert):
            # The sweep does not wait for its commit to reach the disk: everything it writes
            # is derived from the stored alerts, so should the server crash before the
            # flush, those alerts are simply uncorrelated again and the periodic sweep
            # redoes it. (Any later synchronous commit, such as a notification of this
            # sweep, flushes it first.) Ingest commits stay synchronous.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # NO KEY UPDATE: serializes sweeps of a company without blocking the ingest's
        # inserts, whose foreign-key checks take KEY SHARE locks on the company row. In id
        # order, so two sweeps sharing companies cannot deadlock.
        companies = {
            company.pk: company
            for company in Company.objects.select_for_update(no_key=True)
            .filter(pk__in=company_ids)
            .order_by("pk")
        }
        if alert_ids is None:
            alerts = _oldest_uncorrelated(sorted(companies), share)
        else:
            alerts = [
                _Alert(*row)
                for row in _eligible(Alert.objects.filter(pk__in=alert_ids)).values_list(
                    *ALERT_FIELDS
                )
            ]
        counts = Counter(a.company_id for a in alerts)
        results = {company_id: SweepResult(alerts=count) for company_id, count in counts.items()}
        if alerts:
            _Batch(companies, alerts, results).run()
    return results, [company_id for company_id, count in counts.items() if count == share]


def _eligible(alerts: QuerySet[Alert]) -> QuerySet[Alert]:
    return alerts.filter(correlated_at__isnull=True, quarantined_at__isnull=True).order_by(
        "event_time", "id"
    )


def _isolate(company_id: int, share: int) -> tuple[dict[int, SweepResult], list[int]]:
    """Correlate the company's oldest alerts (up to ISOLATION_LIMIT) in halves, again and
    again, until each alert that fails is alone; those are quarantined."""
    limit = min(share, ISOLATION_LIMIT)
    alert_ids = list(
        _eligible(Alert.objects.filter(company_id=company_id)).values_list("id", flat=True)[:limit]
    )
    result = SweepResult()
    pending = [alert_ids]
    while pending:
        ids = pending.pop()
        try:
            batch, _ = _correlate([company_id], share, alert_ids=ids)
        except NOT_THE_ALERTS:
            raise
        except Exception as error:
            if len(ids) == 1:
                _quarantine(ids[0], error)
            else:
                middle = len(ids) // 2
                # Older half first: the stack pops the last pushed.
                pending += [ids[middle:], ids[:middle]]
            continue
        if company_id in batch:
            result.alerts += batch[company_id].alerts
            result.became_visible += batch[company_id].became_visible
    results = {company_id: result} if result.alerts else {}
    return results, [company_id] if len(alert_ids) == limit else []


def _quarantine(alert_id: int, error: Exception) -> None:
    logger.error("Alert %s quarantined: correlation fails on it alone.", alert_id, exc_info=error)
    Alert.objects.filter(pk=alert_id).update(
        quarantined_at=timezone.now(),
        quarantine_error=f"{type(error).__name__}: {error}"[:QUARANTINE_ERROR_LENGTH],
    )


def _oldest_uncorrelated(company_ids: list[int], share: int) -> list[_Alert]:
    """Up to ``share`` uncorrelated alerts per company, each company's in (event time, id)
    order. On PostgreSQL one query walks each company's part of the partial index
    (LATERAL … LIMIT), so its cost does not grow with the backlog; elsewhere (SQLite, the
    embedded mode) one query per company."""
    if not is_postgresql(Alert):
        return [
            _Alert(*row)
            for company_id in company_ids
            for row in _eligible(Alert.objects.filter(company_id=company_id)).values_list(
                *ALERT_FIELDS
            )[:share]
        ]
    columns = ", ".join(f"a.{name}" for name in ALERT_FIELDS)
    with binding_cursor(connection, binary=True) as cursor:
        cursor.execute(
            f"SELECT {columns} FROM unnest(%s::bigint[]) AS c(id) CROSS JOIN LATERAL ("  # noqa: S608
            f'  SELECT * FROM "{Alert._meta.db_table}" AS u'
            "  WHERE u.company_id = c.id AND u.correlated_at IS NULL"
            "    AND u.quarantined_at IS NULL"
            "  ORDER BY u.event_time, u.id LIMIT %s"
            ") AS a",
            [company_ids, share],
        )
        return [_Alert(*row) for row in cursor.fetchall()]


class _Batch:
    def __init__(
        self, companies: dict[int, Company], alerts: list[_Alert], results: dict[int, SweepResult]
    ) -> None:
        self.companies = companies
        self.alerts = alerts
        self.results = results
        self.now = timezone.now()
        self.windows: dict[int, timedelta] = {
            pk: timedelta(minutes=company.correlation_window_minutes)
            for pk, company in companies.items()
        }
        self.maintenance: dict[int, list[MaintenanceWindow]] = defaultdict(list)
        for window in MaintenanceWindow.objects.filter(company_id__in=companies):
            self.maintenance[window.company_id].append(window)
        names = {a.asset_name for a in alerts}
        self.assets: dict[Scoped, Asset] = {
            (a.company_id, a.name): a
            for a in Asset.objects.filter(company_id__in=companies, name__in=names)
        }
        self.keys = {a.id: aggregation_key(companies[a.company_id], a) for a in alerts}
        # Fingerprints a resolved alert of this batch closes: only their firing alerts need
        # following through the batch (earlier ones are read from the database).
        self.resolving: set[Scoped] = {
            (a.company_id, a.fingerprint) for a in alerts if a.status == AlertStatus.RESOLVED
        }
        self.accepting: dict[Scoped, Incident] = {}
        self.new: list[Incident] = []
        self.changed: dict[int, Incident] = {}
        self.stale: list[int] = []
        self.was_visible: dict[int, bool] = {}
        # Alerts to write: alert -> (incident object or None, resolved_at or None)
        self.placement: dict[int, tuple[Incident | None, datetime | None]] = {}
        # Firing alerts still open, by fingerprint: (alert id, event time, incident).
        self.open_firing: dict[Scoped, list[tuple[int, datetime, Incident | None]]] = defaultdict(
            list
        )
        self.closed_earlier: dict[int, datetime] = {}
        self.resolved_now: list[Incident] = []

    def run(self) -> None:
        self._load()
        for alert in self.alerts:
            if alert.status == AlertStatus.FIRING:
                self._fire(alert)
            else:
                self._resolve(alert)
        self._write()

    # --- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        keys = {
            (a.company_id, self.keys[a.id])
            for a in self.alerts
            if self.companies[a.company_id].auto_correlate
        }
        if keys:
            # Filtering companies and keys apart may also lock a row another company of the
            # batch would have matched; those rows are this sweep's to lock anyway.
            for incident in (
                Incident.objects.filter(
                    company_id__in={company_id for company_id, _ in keys},
                    accepting=True,
                    key__in={key for _, key in keys},
                )
                .select_related("asset")
                .select_for_update(of=("self",))
            ):
                if (incident.company_id, incident.key) in keys:
                    self.accepting[incident.company_id, incident.key] = incident
                    self._track(incident)
        fingerprints = self.resolving
        if not fingerprints:
            return
        earlier = [
            row
            for row in Alert.objects.filter(
                company_id__in={company_id for company_id, _ in fingerprints},
                status=AlertStatus.FIRING,
                resolved_at__isnull=True,
                correlated_at__isnull=False,
                fingerprint__in={fingerprint for _, fingerprint in fingerprints},
            ).values_list("id", "company_id", "fingerprint", "event_time", "incident_id")
            if (row[1], row[2]) in fingerprints
        ]
        incident_ids = {row[4] for row in earlier if row[4] is not None}
        loaded = {i.pk: i for i in self.accepting.values()}
        for incident in (
            Incident.objects.filter(pk__in=incident_ids - loaded.keys())
            .select_related("asset")
            .select_for_update(of=("self",))
        ):
            loaded[incident.pk] = incident
            self._track(incident)
        for alert_id, company_id, fingerprint, event_time, incident_id in earlier:
            self.open_firing[company_id, fingerprint].append(
                (alert_id, event_time, loaded.get(incident_id))
            )

    def _track(self, incident: Incident) -> None:
        self.was_visible.setdefault(incident.pk, incident.visible)

    # --- rules ----------------------------------------------------------------------------
    def _fire(self, alert: _Alert) -> None:
        company = self.companies[alert.company_id]
        key = self.keys[alert.id]
        incident = self.accepting.get((company.pk, key)) if company.auto_correlate else None
        if incident is not None and not incident.accepting:
            incident = None
        elif (
            incident is not None
            and incident.last_alert_at < alert.event_time - self.windows[company.pk]
        ):
            incident.accepting = False
            if incident.pk:
                self.stale.append(incident.pk)
                self.changed[incident.pk] = incident
            incident = None
        if incident is None:
            incident = self._open(company, alert, key)
        else:
            self._join(company, incident, alert)
        self.placement[alert.id] = (incident, None)
        if self.resolving and (company.pk, alert.fingerprint) in self.resolving:
            self.open_firing[company.pk, alert.fingerprint].append(
                (alert.id, alert.event_time, incident)
            )

    def _open(self, company: Company, alert: _Alert, key: str) -> Incident:
        incident = Incident(
            company=company,
            key=key,
            accepting=company.auto_correlate,
            title=f"{alert.signature} on {alert.asset_name}"[:600],
            asset=self.assets.get((company.pk, alert.asset_name)),
            asset_name=alert.asset_name,
            signature=alert.signature,
            severity=alert.severity,
            alert_count=1,
            open_alert_count=1,
            tool_sources=[alert.tool_source],
            first_alert_at=alert.event_time,
            last_alert_at=alert.event_time,
            in_maintenance=any(
                w.is_active(alert.event_time, company.tz) for w in self.maintenance[company.pk]
            ),
        )
        incident.visible = incident.alert_count >= company.min_alerts
        self.new.append(incident)
        if incident.accepting:
            self.accepting[company.pk, key] = incident
        return incident

    def _join(self, company: Company, incident: Incident, alert: _Alert) -> None:
        incident.alert_count += 1
        incident.open_alert_count += 1
        incident.first_alert_at = min(incident.first_alert_at, alert.event_time)
        incident.last_alert_at = max(incident.last_alert_at, alert.event_time)
        if SEVERITY_RANK[alert.severity] > SEVERITY_RANK[incident.severity]:
            incident.severity = alert.severity
        if alert.tool_source not in incident.tool_sources:
            incident.tool_sources = [*incident.tool_sources, alert.tool_source]
        if incident.asset is None:
            incident.asset = self.assets.get((company.pk, alert.asset_name))
        if not incident.visible and incident.alert_count >= company.min_alerts:
            incident.visible = True
        if incident.id:
            self.changed[incident.id] = incident

    def _resolve(self, alert: _Alert) -> None:
        fingerprint = (alert.company_id, alert.fingerprint)
        still_open = []
        closed_incident = None
        for alert_id, event_time, incident in self.open_firing.get(fingerprint, []):
            if event_time > alert.event_time:
                still_open.append((alert_id, event_time, incident))
                continue
            if alert_id in self.placement:
                self.placement[alert_id] = (self.placement[alert_id][0], alert.event_time)
            else:
                self.closed_earlier[alert_id] = alert.event_time
            if incident is not None:
                incident.open_alert_count = max(0, incident.open_alert_count - 1)
                if incident.open_alert_count == 0 and incident.status in OPEN_STATUSES:
                    incident.status = IncidentStatus.RESOLVED
                    incident.resolution = Resolution.SOURCE
                    incident.resolved_at = alert.event_time
                    incident.accepting = False
                    self.resolved_now.append(incident)
                if incident.pk:
                    self.changed[incident.pk] = incident
                closed_incident = incident
        self.open_firing[fingerprint] = still_open
        self.placement[alert.id] = (closed_incident, None)

    # --- writing --------------------------------------------------------------------------
    def _score(self, incident: Incident) -> None:
        incident.priority_score = priority_score(
            severity=incident.severity,
            asset_critical=bool(incident.asset and incident.asset.is_critical),
            alert_count=incident.alert_count,
            tool_count=len(incident.tool_sources),
            first_alert_at=incident.first_alert_at,
            now=self.now,
        )

    def _write(self) -> None:
        if self.stale:
            Incident.objects.filter(pk__in=self.stale).update(accepting=False)
        for incident in (*self.new, *self.changed.values()):
            self._score(incident)
        if self.new:
            Incident.objects.bulk_create(self.new)
        for incident in self.changed.values():
            incident.updated_at = self.now
        bulk_set(Incident, list(self.changed.values()), INCIDENT_UPDATE_FIELDS)

        for alert in self.alerts:
            incident, alert.resolved_at = self.placement[alert.id]
            alert.incident_id = incident.pk if incident is not None else None
            asset = self.assets.get((alert.company_id, alert.asset_name))
            alert.asset_id = asset.pk if asset is not None else None
            alert.correlated_at = self.now
        bulk_set(Alert, self.alerts, ALERT_UPDATE_FIELDS)
        bulk_set(
            Alert,
            [SimpleNamespace(id=pk, resolved_at=at) for pk, at in self.closed_earlier.items()],
            ["resolved_at"],
        )

        for incident in self.new:
            if incident.visible and incident.status in OPEN_STATUSES:
                self.results[incident.company_id].became_visible.append(incident.pk)
        for pk, incident in self.changed.items():
            if (
                incident.visible
                and not self.was_visible.get(pk, True)
                and incident.status in OPEN_STATUSES
            ):
                self.results[incident.company_id].became_visible.append(pk)
        IncidentEvent.objects.bulk_create(
            IncidentEvent(
                incident=incident,
                kind=EventKind.RESOLVED_BY_SOURCE,
                text="Every alert was resolved by the monitoring tool.",
            )
            for incident in self.resolved_now
        )
