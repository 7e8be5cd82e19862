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

A sweep locks the company row (FOR NO KEY UPDATE, which ingest inserts do not wait for),
so two sweeps of one company never interleave; it takes
alerts in event-time order in batches and writes each batch with a few set-based queries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.alerts.choices import SEVERITY_RANK, AlertStatus
from apps.alerts.models import Alert
from apps.incidents.choices import OPEN_STATUSES, EventKind, IncidentStatus, Resolution
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.scoring import priority_score
from apps.tenants.models import Asset, Company, MaintenanceWindow

BATCH_SIZE = 2000
ALERT_FIELDS = (
    "id",
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


@dataclass
class SweepResult:
    alerts: int = 0
    became_visible: list[int] = field(default_factory=list)


def aggregation_key(company: Company, alert: Alert) -> str:
    values = {
        "asset": alert.asset_name,
        "signature": alert.signature,
        "tool": alert.tool_source,
        "severity": alert.severity,
    }
    return "|".join(values[part] for part in company.aggregation_key.split("|"))


def correlate_company(*, company_id: int, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Correlate every uncorrelated alert of the company, oldest event first."""
    result = SweepResult()
    while True:
        with transaction.atomic():
            # NO KEY UPDATE: serializes sweeps of the company without blocking the ingest's
            # inserts, whose foreign-key checks take KEY SHARE locks on the company row.
            company = Company.objects.select_for_update(no_key=True).get(pk=company_id)
            batch = list(
                Alert.objects.filter(company_id=company_id, correlated_at__isnull=True)
                .order_by("event_time", "id")
                .only(*ALERT_FIELDS)[:batch_size]
            )
            if batch:
                _Batch(company, batch, result).run()
        result.alerts += len(batch)
        if len(batch) < batch_size:
            return result


class _Batch:
    def __init__(self, company: Company, alerts: list[Alert], result: SweepResult) -> None:
        self.company = company
        self.alerts = alerts
        self.result = result
        self.now = timezone.now()
        self.window = timedelta(minutes=company.correlation_window_minutes)
        self.windows = list(MaintenanceWindow.objects.filter(company=company))
        names = {a.asset_name for a in alerts}
        self.assets = {a.name: a for a in Asset.objects.filter(company=company, name__in=names)}
        self.accepting: dict[str, Incident] = {}
        self.new: list[Incident] = []
        self.changed: dict[int, Incident] = {}
        self.stale: list[int] = []
        self.was_visible: dict[int, bool] = {}
        # Alerts to write: alert -> (incident object or None, resolved_at or None)
        self.placement: dict[int, tuple[Incident | None, datetime | None]] = {}
        # Firing alerts still open, by fingerprint: (alert id, event time, incident).
        self.open_firing: dict[str, list[tuple[int, datetime, Incident | None]]] = defaultdict(list)
        self.closed_earlier: dict[datetime, list[int]] = defaultdict(list)
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
        if self.company.auto_correlate:
            keys = {aggregation_key(self.company, a) for a in self.alerts}
            for incident in (
                Incident.objects.filter(company=self.company, accepting=True, key__in=keys)
                .select_related("asset")
                .select_for_update(of=("self",))
            ):
                self.accepting[incident.key] = incident
                self._track(incident)
        fingerprints = {a.fingerprint for a in self.alerts if a.status == AlertStatus.RESOLVED}
        if not fingerprints:
            return
        earlier = list(
            Alert.objects.filter(
                company=self.company,
                status=AlertStatus.FIRING,
                resolved_at__isnull=True,
                correlated_at__isnull=False,
                fingerprint__in=fingerprints,
            ).values_list("id", "fingerprint", "event_time", "incident_id")
        )
        incident_ids = {row[3] for row in earlier if row[3] is not None}
        missing = incident_ids - {i.pk for i in self.accepting.values()}
        loaded = {i.pk: i for i in self.accepting.values()}
        for incident in (
            Incident.objects.filter(pk__in=missing)
            .select_related("asset")
            .select_for_update(of=("self",))
        ):
            loaded[incident.pk] = incident
            self._track(incident)
        for alert_id, fingerprint, event_time, incident_id in earlier:
            self.open_firing[fingerprint].append((alert_id, event_time, loaded.get(incident_id)))

    def _track(self, incident: Incident) -> None:
        self.was_visible.setdefault(incident.pk, incident.visible)

    # --- rules ----------------------------------------------------------------------------
    def _fire(self, alert: Alert) -> None:
        key = aggregation_key(self.company, alert)
        incident = self.accepting.get(key) if self.company.auto_correlate else None
        if incident is not None and not incident.accepting:
            incident = None
        elif incident is not None and incident.last_alert_at < alert.event_time - self.window:
            incident.accepting = False
            if incident.pk:
                self.stale.append(incident.pk)
                self.changed[incident.pk] = incident
            incident = None
        if incident is None:
            incident = self._open(alert, key)
        else:
            self._join(incident, alert)
        self.placement[alert.pk] = (incident, None)
        self.open_firing[alert.fingerprint].append((alert.pk, alert.event_time, incident))

    def _open(self, alert: Alert, key: str) -> Incident:
        asset = self.assets.get(alert.asset_name)
        incident = Incident(
            company=self.company,
            key=key,
            accepting=self.company.auto_correlate,
            title=f"{alert.signature} on {alert.asset_name}"[:600],
            asset=asset,
            asset_name=alert.asset_name,
            signature=alert.signature,
            severity=alert.severity,
            alert_count=1,
            open_alert_count=1,
            tool_sources=[alert.tool_source],
            first_alert_at=alert.event_time,
            last_alert_at=alert.event_time,
            in_maintenance=any(
                w.is_active(alert.event_time, self.company.tz) for w in self.windows
            ),
        )
        incident.visible = incident.alert_count >= self.company.min_alerts
        self.new.append(incident)
        if incident.accepting:
            self.accepting[key] = incident
        return incident

    def _join(self, incident: Incident, alert: Alert) -> None:
        incident.alert_count += 1
        incident.open_alert_count += 1
        incident.first_alert_at = min(incident.first_alert_at, alert.event_time)
        incident.last_alert_at = max(incident.last_alert_at, alert.event_time)
        if SEVERITY_RANK[alert.severity] > SEVERITY_RANK[incident.severity]:
            incident.severity = alert.severity
        if alert.tool_source not in incident.tool_sources:
            incident.tool_sources = [*incident.tool_sources, alert.tool_source]
        if incident.asset is None:
            incident.asset = self.assets.get(alert.asset_name)
        if not incident.visible and incident.alert_count >= self.company.min_alerts:
            incident.visible = True
        if incident.pk:
            self.changed[incident.pk] = incident

    def _resolve(self, alert: Alert) -> None:
        still_open = []
        closed_incident = None
        for alert_id, event_time, incident in self.open_firing.get(alert.fingerprint, []):
            if event_time > alert.event_time:
                still_open.append((alert_id, event_time, incident))
                continue
            if alert_id in self.placement:
                self.placement[alert_id] = (self.placement[alert_id][0], alert.event_time)
            else:
                self.closed_earlier[alert.event_time].append(alert_id)
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
        self.open_firing[alert.fingerprint] = still_open
        self.placement[alert.pk] = (closed_incident, None)

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
        if self.changed:
            for incident in self.changed.values():
                incident.updated_at = self.now
            Incident.objects.bulk_update(list(self.changed.values()), INCIDENT_UPDATE_FIELDS)

        groups: dict[tuple[int | None, int | None, datetime | None], list[int]] = defaultdict(list)
        for alert in self.alerts:
            incident, resolved_at = self.placement[alert.pk]
            asset = self.assets.get(alert.asset_name)
            groups[
                (incident.pk if incident else None, asset.pk if asset else None, resolved_at)
            ].append(alert.pk)
        for (incident_id, asset_id, resolved_at), ids in groups.items():
            Alert.objects.filter(pk__in=ids).update(
                incident_id=incident_id,
                asset_id=asset_id,
                resolved_at=resolved_at,
                correlated_at=self.now,
            )
        for resolved_at, ids in self.closed_earlier.items():
            Alert.objects.filter(pk__in=ids).update(resolved_at=resolved_at)

        self.result.became_visible.extend(
            i.pk for i in self.new if i.visible and i.status in OPEN_STATUSES
        )
        self.result.became_visible.extend(
            pk
            for pk, i in self.changed.items()
            if i.visible and not self.was_visible.get(pk, True) and i.status in OPEN_STATUSES
        )
        IncidentEvent.objects.bulk_create(
            IncidentEvent(
                incident=incident,
                kind=EventKind.RESOLVED_BY_SOURCE,
                text="Every alert was resolved by the monitoring tool.",
            )
            for incident in self.resolved_now
        )
