"""The correlation engine: uncorrelated alerts of one company become incidents.

Rules (docs/decisions.md, "Correlation"):
- A firing alert joins every open incident of its company holding a link key it matches
  within that key's window (apps/incidents/grouping.py: the aggregation key, burst keys
  from labels, dependencies); several are merged into one (audited), none opens a new
  incident. The partition depends on the set of alerts only, not on arrival order or
  batches. Two incidents grouped by hand are never merged.
- A resolution links like a firing alert of its aggregation key at its time: it extends
  that key of the incident it closed, and merges other incidents holding the key within
  the window (so resolutions, too, give the same incidents in any arrival order that
  keeps each alert's own notifications in order).
- Flapping: an incident resolved by the source takes a firing alert of its keys back
  (within the window of the key's segments, which reach to the resolutions), silently (no
  new assignment or notification); from FLAP_THRESHOLD such returns on it is marked
  ``flapping``.
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

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.alerts.choices import SEVERITY_RANK, AlertStatus
from apps.alerts.models import Alert
from apps.audit.services import record
from apps.common.db import binding_cursor, bulk_insert, bulk_set, is_postgresql, planner, unsaved
from apps.common.errors import error_summary
from apps.incidents import grouping, open_counts
from apps.incidents.choices import (
    MERGE_AUDIT_ACTION,
    OPEN_STATUSES,
    EventKind,
    IncidentStatus,
    Resolution,
    Rule,
)
from apps.incidents.models import CorrelationReason, Incident, IncidentEvent, IncidentKey
from apps.incidents.scoring import priority_score
from apps.tenants.models import Asset, Company, MaintenanceWindow

logger = logging.getLogger(__name__)

BATCH_SIZE = 10000
# Returns after a resolution by the source that mark an incident as flapping.
FLAP_THRESHOLD = 3
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
    "labels",
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
    "merged_into",
    "grouped_by_hand",
    "flap_count",
    "flapping",
    "asset_name",
    "signature",
    "title",
    "assigned_to",
    "acknowledged_at",
    "acknowledged_by",
    "updated_at",
]
ALERT_UPDATE_FIELDS = ["incident", "asset", "resolved_at", "correlated_at"]
# What a sweep reads of its companies and of the alerts' assets: a sweep of a storm spread
# over many companies loads one company and a few assets per alert, so whole rows (a
# company's secrets and policies, an asset's tags) would be most of its CPU.
COMPANY_FIELDS = (
    "id",
    "name",
    "timezone",
    "correlation_window_minutes",
    "aggregation_key",
    "group_by",
    "auto_correlate",
    "min_alerts",
)
ASSET_FIELDS = ("id", "company_id", "name", "is_critical")
INCIDENT_ASSET_FIELDS = tuple(f"asset__{name}" for name in ASSET_FIELDS if name != "company_id")

# (company id, aggregation key or fingerprint): every lookup of a batch is per company.
Scoped = tuple[int, str]


@dataclass(slots=True)
class SweepAlert:
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
    # A dict, or its JSON text as the PostgreSQL path reads it (decoded when needed).
    labels: dict | str
    incident_id: int | None = None
    asset_id: int | None = None
    resolved_at: datetime | None = None
    correlated_at: datetime | None = None


@dataclass
class SweepResult:
    alerts: int = 0
    became_visible: list[int] = field(default_factory=list)


def aggregation_key(company: Company, alert: SweepAlert) -> str:
    return "|".join(
        getattr(alert, grouping.FIELDS[part]) for part in company.aggregation_key.split("|")
    )


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
            .only(*COMPANY_FIELDS)
            .order_by("pk")
        }
        if alert_ids is None:
            alerts = _oldest_uncorrelated(sorted(companies), share)
        else:
            alerts = [
                SweepAlert(*row)
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
        quarantine_error=error_summary(error, QUARANTINE_ERROR_LENGTH),
    )


def _oldest_uncorrelated(company_ids: list[int], share: int) -> list[SweepAlert]:
    """Up to ``share`` uncorrelated alerts per company, each company's in (event time, id)
    order. On PostgreSQL one query walks each company's part of the partial index
    (LATERAL … LIMIT), so its cost does not grow with the backlog; elsewhere (SQLite, the
    embedded mode) one query per company."""
    if not is_postgresql(Alert):
        return [
            SweepAlert(*row)
            for company_id in company_ids
            for row in _eligible(Alert.objects.filter(company_id=company_id)).values_list(
                *ALERT_FIELDS
            )[:share]
        ]
    columns = ", ".join(
        f"a.{name}::text" if name == "labels" else f"a.{name}" for name in ALERT_FIELDS
    )
    # The months' ordered scans merged up to the limit, not every uncorrelated alert read
    # and sorted: a storm's backlog of 100 k cost each sweep 240 ms, now 30.
    with planner(connection, sort=False), binding_cursor(connection, binary=True) as cursor:
        cursor.execute(
            f"SELECT {columns} FROM unnest(%s::bigint[]) AS c(id) CROSS JOIN LATERAL ("  # noqa: S608
            f'  SELECT * FROM "{Alert._meta.db_table}" AS u'
            "  WHERE u.company_id = c.id AND u.correlated_at IS NULL"
            "    AND u.quarantined_at IS NULL"
            "  ORDER BY u.event_time, u.id LIMIT %s"
            ") AS a",
            [company_ids, share],
        )
        return [SweepAlert(*row) for row in cursor.fetchall()]


def _assets(names: set[Scoped]) -> dict[Scoped, Asset]:
    """The assets of these (company, name) pairs, exactly those (on PostgreSQL: a storm
    over many companies names the same hosts in each), with the fields a sweep reads. On
    PostgreSQL one index probe per pair (``LIMIT 1`` keeps the planner from joining every
    asset of the company: a storm's company holds hundreds of thousands of pods)."""
    if not is_postgresql(Asset):
        assets = Asset.objects.only(*ASSET_FIELDS).filter(
            company_id__in={c for c, _ in names}, name__in={n for _, n in names}
        )
        return {(a.company_id, a.name): a for a in assets if (a.company_id, a.name) in names}
    if not names:
        return {}
    companies, asset_names = zip(*sorted(names), strict=True)
    columns = ", ".join(f"a.{name}" for name in ASSET_FIELDS)
    assets = Asset.objects.raw(
        f"SELECT {columns} FROM unnest(%s::bigint[], %s::text[]) AS w(company_id, name) "  # noqa: S608
        f'CROSS JOIN LATERAL (SELECT * FROM "{Asset._meta.db_table}" AS u '
        "WHERE u.company_id = w.company_id AND u.name = w.name LIMIT 1) AS a",
        [list(companies), list(asset_names)],
    )
    return {(a.company_id, a.name): a for a in assets}


# Every stored segment of these (company, key) pairs, one index probe per pair (OFFSET 0
# keeps the planner from flattening the probe into a join over every key of the company: a
# storm's company holds millions, all within the window of a storm).
_KEY_PROBE = (
    "FROM unnest(%s::bigint[], %s::text[]) AS w(company_id, key) CROSS JOIN LATERAL ("  # noqa: S608
    f'  SELECT * FROM "{IncidentKey._meta.db_table}" AS u'
    "  WHERE u.company_id = w.company_id AND u.key = w.key{} OFFSET 0"
    ") AS u"
)


def _pairs(pairs: set[Scoped]) -> list[list]:
    companies, keys = zip(*sorted(pairs), strict=True) if pairs else ((), ())
    return [list(companies), list(keys)]


def _holding_keys(pairs: set[Scoped], *, since: datetime, until: datetime) -> Q:
    """Incidents holding a segment of one of these (company, key) pairs that reaches into
    [since, until]: on PostgreSQL ``id = ANY(ARRAY(…))`` over the probes, so the incidents,
    too, are read by their key."""
    if not is_postgresql(IncidentKey):
        keys = IncidentKey.objects.filter(
            company_id__in={c for c, _ in pairs},
            key__in={k for _, k in pairs},
            last_alert_at__gte=since,
            first_alert_at__lte=until,
        )
        return Q(pk__in=keys.values("incident_id"))
    probe = _KEY_PROBE.format(" AND u.last_alert_at >= %s AND u.first_alert_at <= %s")
    table = Incident._meta.db_table
    return Q(
        RawSQL(  # noqa: S611 - fixed SQL, values as parameters
            f'"{table}"."id" = ANY(ARRAY(SELECT u.incident_id {probe}))',
            [*_pairs(pairs), since, until],
            output_field=BooleanField(),
        )
    )


def _key_segments(pairs: set[Scoped], incident_ids: list[int]) -> list[tuple]:
    """(id, incident id, key, first, last) of the segments of these (company, key) pairs
    that these incidents hold."""
    if not is_postgresql(IncidentKey):
        return list(
            IncidentKey.objects.filter(
                company_id__in={c for c, _ in pairs},
                incident_id__in=incident_ids,
                key__in={k for _, k in pairs},
            ).values_list("id", "incident_id", "key", "first_alert_at", "last_alert_at")
        )
    with binding_cursor(connection, binary=True) as cursor:
        cursor.execute(
            "SELECT u.id, u.incident_id, u.key, u.first_alert_at, u.last_alert_at "
            f"{_KEY_PROBE.format('')} WHERE u.incident_id = ANY(%s::bigint[])",
            [*_pairs(pairs), list(incident_ids)],
        )
        return cursor.fetchall()


@dataclass(eq=False, slots=True)
class _Group:
    """An incident as the batch builds it, with its link keys' segments (key -> [[first,
    last], …]: runs of that key's alerts with no gap longer than the key's window, so an
    event time within the window of a segment is within the window of one of its alerts).
    A group merged into another points at it (``into``)."""

    incident: Incident
    seq: int
    spans: dict[str, list[list[datetime]]] = field(default_factory=dict)
    # Stored segments (IncidentKey ids) of each key, replaced when the key changes.
    stored: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    dirty: set[str] = field(default_factory=set)
    into: _Group | None = None

    def live(self) -> _Group:
        group = self
        while group.into is not None:
            group = group.into
        return group


class _Batch:
    def __init__(
        self,
        companies: dict[int, Company],
        alerts: list[SweepAlert],
        results: dict[int, SweepResult],
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
        correlating = [a for a in alerts if companies[a.company_id].auto_correlate]
        for alert in correlating:
            alert.labels = _labels(alert)
        labelled = [(a.company_id, a.asset_name, a.labels) for a in correlating if a.labels]
        # The graph around the batch's assets and the assets its labels name.
        self.graphs = grouping.load_around(
            {},
            {(a.company_id, a.asset_name) for a in correlating}
            | {
                (company_id, parent)
                for company_id, _, labels in labelled
                for label in grouping.DEPENDENCY_LABELS
                if isinstance(parent := labels.get(label), str) and parent
            },
        )
        grouping.derive_from_labels(self.graphs, labelled)
        # After the labels made their assets: a new pod's alerts link to it at once.
        self.assets = _assets({(a.company_id, a.asset_name) for a in alerts})
        self.keys = {a.id: aggregation_key(companies[a.company_id], a) for a in alerts}
        self.links: dict[int, grouping.Links] = {
            a.id: grouping.links(
                company=companies[a.company_id],
                key=self.keys[a.id],
                alert=a,
                labels=a.labels if companies[a.company_id].group_by else {},
                graph=self.graphs.get(a.company_id, grouping.EMPTY_GRAPH),
            )
            for a in alerts
            if a.status == AlertStatus.FIRING and companies[a.company_id].auto_correlate
        }
        # Fingerprints a resolved alert of this batch closes: only their firing alerts need
        # following through the batch (earlier ones are read from the database).
        self.resolving: set[Scoped] = {
            (a.company_id, a.fingerprint) for a in alerts if a.status == AlertStatus.RESOLVED
        }
        # Open groups by link key, for matching (merged groups are followed to their
        # survivor).
        self.index: dict[Scoped, list[_Group]] = defaultdict(list)
        self.groups: list[_Group] = []
        self.changed: dict[int, Incident] = {}
        self.was_visible: dict[int, bool] = {}
        self.merges: list[tuple[_Group, str]] = []
        self.reasons: list[tuple[SweepAlert, _Group, Rule, str]] = []
        # Alerts to write: alert -> (group or None, resolved_at or None)
        self.placement: dict[int, tuple[_Group | None, datetime | None]] = {}
        # Firing alerts still open, by fingerprint: (alert id, event time, group).
        self.open_firing: dict[Scoped, list[tuple[int, datetime, _Group | None]]] = defaultdict(
            list
        )
        # Firing alerts of earlier sweeps this one resolves: id -> (event time, resolved at).
        self.closed_earlier: dict[int, tuple[datetime, datetime]] = {}
        self.resolved_now: list[Incident] = []
        self.flapping_now: list[Incident] = []

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
        """Lock the open incidents sharing a link key with the batch within reach of its
        event times (with their keys the batch can match or extend), and those of the firing
        alerts it resolves."""
        earlier = []
        if self.resolving:
            fingerprints = self.resolving
            earlier = [
                row
                for row in Alert.objects.filter(
                    company_id__in={company_id for company_id, _ in fingerprints},
                    status=AlertStatus.FIRING,
                    resolved_at__isnull=True,
                    correlated_at__isnull=False,
                    fingerprint__any={fingerprint for _, fingerprint in fingerprints},
                ).values_list("id", "company_id", "fingerprint", "event_time", "incident_id")
                if (row[1], row[2]) in fingerprints
            ]
        wanted = Q(pk__any={row[4] for row in earlier if row[4] is not None})
        # What each alert can match: a firing alert its link keys, a resolution its
        # aggregation key (``_bridge``).
        matching = {alert_id: links.matched for alert_id, links in self.links.items()}
        matching.update(
            (a.id, [f"k:{self.keys[a.id]}"[: grouping.KEY_LENGTH]])
            for a in self.alerts
            if a.status == AlertStatus.RESOLVED and self.companies[a.company_id].auto_correlate
        )
        if matching:
            linked = [a for a in self.alerts if a.id in matching]
            reach = max(self.windows[a.company_id] for a in linked)
            wanted |= Q(accepting=True) & _holding_keys(
                {(a.company_id, key) for a in linked for key in matching[a.id]},
                since=min(a.event_time for a in linked) - reach,
                until=max(a.event_time for a in linked) + reach,
            )
        loaded: dict[int, _Group] = {}
        for incident in (
            Incident.objects.filter(wanted)
            .select_related("asset")
            .only(*(f.name for f in Incident._meta.concrete_fields), *INCIDENT_ASSET_FIELDS)
            .select_for_update(of=("self",))
        ):
            loaded[incident.pk] = self._group(incident)
            self.was_visible[incident.pk] = incident.visible
        # Whether an alert is upstream of an incident's root: the graph around the roots.
        grouping.load_around(
            self.graphs,
            {
                (group.incident.company_id, group.incident.asset_name)
                for group in loaded.values()
                if self.companies[group.incident.company_id].auto_correlate
            },
        )
        linkable = [pk for pk, group in loaded.items() if group.incident.accepting]
        # Of their keys, those the batch can match or extend: an incident grown by a storm
        # holds thousands (one per pod), and the others change nothing here. (On a merge,
        # the absorbed incident's other keys move to the survivor as they are.)
        touched: set[Scoped] = {
            (a.company_id, key)
            for a in self.alerts
            if (links := self.links.get(a.id)) is not None
            for key in (*links.matched, *links.published)
        }
        touched.update(
            (a.company_id, f"k:{self.keys[a.id]}"[: grouping.KEY_LENGTH])
            for a in self.alerts
            if a.status == AlertStatus.RESOLVED and self.companies[a.company_id].auto_correlate
        )
        if linkable and touched:
            for pk, incident_id, key, first, last in _key_segments(touched, linkable):
                group = loaded[incident_id]
                if key not in group.spans:
                    group.spans[key] = []
                    self.index[group.incident.company_id, key].append(group)
                group.spans[key].append([first, last])
                group.stored[key].append(pk)
        for alert_id, company_id, fingerprint, event_time, incident_id in earlier:
            self.open_firing[company_id, fingerprint].append(
                (alert_id, event_time, loaded.get(incident_id))
            )

    def _group(self, incident: Incident) -> _Group:
        group = _Group(incident, len(self.groups))
        self.groups.append(group)
        return group

    # --- rules ----------------------------------------------------------------------------
    def _fire(self, alert: SweepAlert) -> None:
        company = self.companies[alert.company_id]
        links = self.links.get(alert.id)
        matches = self._matches(alert, links) if links is not None else {}
        if not matches:
            group = self._open(company, alert)
        else:
            group, *others = _ranked(matches)
            for other in others:
                # A person's merge or split stands: two incidents grouped by hand never
                # merge again (the alert joins the senior one).
                if not (other.incident.grouped_by_hand and group.incident.grouped_by_hand):
                    self._merge(company, other, group, alert)
            self._join(company, group, alert)
            self._explain(alert, group, matches)
        if links is not None:
            self._publish(group, alert, links.published)
        self.placement[alert.id] = (group, None)
        if self.resolving and (company.pk, alert.fingerprint) in self.resolving:
            self.open_firing[company.pk, alert.fingerprint].append(
                (alert.id, alert.event_time, group)
            )

    def _matches(self, alert: SweepAlert, links: grouping.Links) -> dict[_Group, str]:
        """The open groups the alert links to, each with the first key that links it."""
        matches: dict[_Group, str] = {}
        window = self.windows[alert.company_id]
        for key in links.matched:
            reach = grouping.window_of(key, window)
            for candidate in self.index.get((alert.company_id, key), ()):
                group = candidate.live()
                if group in matches or not _accepts(group.incident):
                    continue
                if any(
                    first - reach <= alert.event_time <= last + reach
                    for first, last in group.spans.get(key, ())
                ):
                    matches[group] = key
        return matches

    def _publish(self, group: _Group, alert: SweepAlert, keys: list[str]) -> None:
        group = group.live()
        window = self.windows[alert.company_id]
        for key in keys:
            segments = group.spans.get(key)
            if segments is None:
                segments = group.spans[key] = []
                self.index[alert.company_id, key].append(group)
            segments.append([alert.event_time, alert.event_time])
            group.spans[key] = coalesce(segments, grouping.window_of(key, window))
            group.dirty.add(key)

    def _open(self, company: Company, alert: SweepAlert) -> _Group:
        asset = self.assets.get((company.pk, alert.asset_name))
        incident = unsaved(
            Incident,
            related={"company": company, "asset": asset},
            key=self.keys[alert.id],
            accepting=company.auto_correlate,
            title=f"{alert.signature} on {alert.asset_name}"[:600],
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
            visible=company.min_alerts <= 1,
        )
        return self._group(incident)

    def _join(self, company: Company, group: _Group, alert: SweepAlert) -> None:
        incident = group.incident
        if incident.status == IncidentStatus.RESOLVED:
            self._flap(incident)
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
        if self._is_upstream(company.pk, alert.asset_name, incident):
            self._set_root(incident, alert.asset_name, alert.signature, company.pk)
        if not incident.visible and incident.alert_count >= company.min_alerts:
            incident.visible = True
        if incident.pk:
            self.changed[incident.pk] = incident

    def _flap(self, incident: Incident) -> None:
        """Firing again soon after the source resolved it: the same incident, back open as
        it was (its assignee keeps it; nobody is notified again)."""
        self._reopen(incident)
        incident.flap_count += 1
        if incident.flap_count >= FLAP_THRESHOLD and not incident.flapping:
            incident.flapping = True
            self.flapping_now.append(incident)

    @staticmethod
    def _reopen(incident: Incident) -> None:
        incident.status = (
            IncidentStatus.IN_PROGRESS if incident.assigned_to_id else IncidentStatus.NEW
        )
        incident.resolution = ""
        incident.resolved_at = None

    def _is_upstream(self, company_id: int, asset_name: str, incident: Incident) -> bool:
        graph = self.graphs.get(company_id, grouping.EMPTY_GRAPH)
        return asset_name in graph.ancestors(incident.asset_name)

    def _set_root(
        self, incident: Incident, asset_name: str, signature: str, company_id: int
    ) -> None:
        incident.asset_name = asset_name
        incident.signature = signature
        incident.asset = self.assets.get((company_id, asset_name))
        incident.title = f"{signature} on {asset_name}"[:600]

    def _merge(
        self, company: Company, absorbed: _Group, survivor: _Group, alert: SweepAlert
    ) -> None:
        """Fold ``absorbed`` into ``survivor``: its alerts, counts and link keys; a saved
        incident stays as a record that points at the survivor."""
        gone, kept = absorbed.incident, survivor.incident
        absorbed.into = survivor
        window = self.windows[company.pk]
        for key, segments in absorbed.spans.items():
            if key not in survivor.spans:
                survivor.spans[key] = []
                self.index[company.pk, key].append(survivor)
            survivor.spans[key] = coalesce(
                survivor.spans[key] + segments, grouping.window_of(key, window)
            )
            survivor.dirty.add(key)
        kept.alert_count += gone.alert_count
        kept.open_alert_count += gone.open_alert_count
        if kept.status == IncidentStatus.RESOLVED:
            # Both accept, so a resolved one was resolved by the source: the survivor is
            # open while any of their alerts is, else resolved at the later resolution.
            if kept.open_alert_count > 0:
                self._reopen(kept)
            elif gone.status == IncidentStatus.RESOLVED:
                kept.resolved_at = max(kept.resolved_at, gone.resolved_at)
        kept.first_alert_at = min(kept.first_alert_at, gone.first_alert_at)
        kept.last_alert_at = max(kept.last_alert_at, gone.last_alert_at)
        if SEVERITY_RANK[gone.severity] > SEVERITY_RANK[kept.severity]:
            kept.severity = gone.severity
        kept.tool_sources = [
            *kept.tool_sources,
            *(t for t in gone.tool_sources if t not in kept.tool_sources),
        ]
        if kept.assigned_to_id is None:
            kept.assigned_to_id = gone.assigned_to_id
        if kept.acknowledged_at is None and gone.acknowledged_at is not None:
            # Someone is on this failure already: the survivor must not page people again.
            kept.acknowledged_at = gone.acknowledged_at
            kept.acknowledged_by_id = gone.acknowledged_by_id
        if self._is_upstream(company.pk, gone.asset_name, kept):
            self._set_root(kept, gone.asset_name, gone.signature, company.pk)
        kept.visible = kept.visible or kept.alert_count >= company.min_alerts
        kept.grouped_by_hand = kept.grouped_by_hand or gone.grouped_by_hand
        if kept.pk:
            self.changed[kept.pk] = kept
        if gone.pk:
            gone.status = IncidentStatus.RESOLVED
            gone.resolution = Resolution.MERGED
            gone.resolved_at = self.now
            gone.accepting = False
            gone.visible = False
            self.changed[gone.pk] = gone
            self.merges.append(
                (absorbed, f"{alert.signature} on {alert.asset_name} links it to this incident.")
            )

    def _explain(self, alert: SweepAlert, group: _Group, matches: dict[_Group, str]) -> None:
        if len(matches) > 1:
            text = (
                f"{alert.signature} on {alert.asset_name} links {len(matches)} incidents of "
                "one problem, merged into this one."
            )
            self.reasons.append((alert, group, Rule.BRIDGE, text))
            return
        key = matches[group]
        rule = grouping.rule_of(key)
        if rule is None:
            return
        incident = group.incident
        if rule == Rule.BURST:
            _, _, values = key[2:].partition("=")
            labels = ", ".join(v for v in values.split("|") if "=" in v)
            text = (
                f"{alert.signature} on {alert.asset_name} shares {labels} with the incident's "
                "other assets (burst grouping)."
            )
            if incident.signature == alert.signature:
                incident.title = f"{alert.signature} across {labels}"[:600]
        elif rule == Rule.DEPENDENCY:
            upstream = key[3:]
            first = min(first for first, _ in group.spans[key])
            seconds = round(abs((alert.event_time - first).total_seconds()))
            what = incident.signature if incident.asset_name == upstream else "first alert"
            when = "after" if alert.event_time >= first else "before"
            text = (
                f"{alert.asset_name} depends on {upstream}; its {alert.signature} began "
                f"{seconds} s {when} {upstream}'s {what}."
            )
        else:
            text = (
                f"Assets of this incident depend on {alert.asset_name}: its {alert.signature} "
                "is taken as the root cause."
            )
        self.reasons.append((alert, group, rule, text[:600]))

    def _resolve(self, alert: SweepAlert) -> None:
        fingerprint = (alert.company_id, alert.fingerprint)
        still_open = []
        closed_group = None
        for alert_id, event_time, group in self.open_firing.get(fingerprint, []):
            if event_time > alert.event_time:
                still_open.append((alert_id, event_time, group))
                continue
            if alert_id in self.placement:
                self.placement[alert_id] = (self.placement[alert_id][0], alert.event_time)
            else:
                self.closed_earlier[alert_id] = (event_time, alert.event_time)
            if group is not None:
                group = group.live()
                incident = group.incident
                incident.open_alert_count = max(0, incident.open_alert_count - 1)
                if incident.open_alert_count == 0 and incident.status in OPEN_STATUSES:
                    incident.status = IncidentStatus.RESOLVED
                    incident.resolution = Resolution.SOURCE
                    incident.resolved_at = alert.event_time
                    if not incident.flapping:
                        self.resolved_now.append(incident)
                if incident.pk:
                    self.changed[incident.pk] = incident
                closed_group = group
        self.open_firing[fingerprint] = still_open
        self.placement[alert.id] = (closed_group, None)
        if closed_group is not None and self.companies[alert.company_id].auto_correlate:
            # The key reaches to the resolution, so a flap after a long firing still finds
            # the incident.
            key = f"k:{self.keys[alert.id]}"[: grouping.KEY_LENGTH]
            self._publish(closed_group, alert, [key])
            self._bridge(closed_group, alert, key)

    def _bridge(self, group: _Group, alert: SweepAlert, key: str) -> None:
        """A resolution says its alert fired until then, so it links like a firing alert of
        its aggregation key at that time: other incidents holding the key within the window
        of it are the same problem and merge (as they would, had the notifications arrived
        in event-time order: the later alerts would have found the incident through the
        resolution's segment)."""
        group = group.live()
        if not _accepts(group.incident):
            return
        matches = {group: key, **self._matches(alert, grouping.Links(published=[], matched=[key]))}
        if len(matches) == 1:
            return
        company = self.companies[alert.company_id]
        survivor, *others = _ranked(matches)
        for other in others:
            if not (other.incident.grouped_by_hand and survivor.incident.grouped_by_hand):
                self._merge(company, other, survivor, alert)

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
        live = [g for g in self.groups if g.into is None]
        new = [g.incident for g in live if g.incident.pk is None]
        for incident in (*new, *self.changed.values()):
            self._score(incident)
        bulk_insert(Incident, new)
        for absorbed, _ in self.merges:
            absorbed.incident.merged_into_id = absorbed.live().incident.pk
        for incident in self.changed.values():
            incident.updated_at = self.now
        bulk_set(Incident, list(self.changed.values()), INCIDENT_UPDATE_FIELDS)

        for alert in self.alerts:
            group, alert.resolved_at = self.placement[alert.id]
            alert.incident_id = group.live().incident.pk if group is not None else None
            asset = self.assets.get((alert.company_id, alert.asset_name))
            alert.asset_id = asset.pk if asset is not None else None
            alert.correlated_at = self.now
        # By id and event time: each alert is looked for in its month's partition only.
        # Each statement adds its alerts' shares to their incidents' open counts.
        with planner(
            connection,
            hashjoin=False,
            mergejoin=False,
            local=open_counts.COUNTED_BY_STATEMENT,
        ):
            bulk_set(
                Alert,
                self.alerts,
                ALERT_UPDATE_FIELDS,
                match=["event_time"],
                then=(open_counts.RETURNED, open_counts.ALERTS_JOINED),
            )
            bulk_set(
                Alert,
                [
                    SimpleNamespace(id=pk, event_time=event_time, resolved_at=at)
                    for pk, (event_time, at) in self.closed_earlier.items()
                ],
                ["resolved_at"],
                match=["event_time"],
                then=(open_counts.RETURNED, open_counts.ALERTS_RESOLVED),
            )
        self._write_keys(live)
        bulk_insert(
            CorrelationReason,
            [
                SimpleNamespace(
                    alert_id=alert.id, incident_id=group.live().incident.pk, rule=rule, text=text
                )
                for alert, group, rule, text in self.reasons
            ],
        )
        if self.merges:
            self._write_merges()

        # The incidents of this batch that stand (one resolved here may have merged since).
        stored = {id(group.incident) for group in live}
        for group in live:
            incident = group.incident
            if not (incident.visible and incident.status in OPEN_STATUSES):
                continue
            if self.was_visible.get(incident.pk, False) is False:
                self.results[incident.company_id].became_visible.append(incident.pk)
        IncidentEvent.objects.bulk_create(
            [
                *(
                    IncidentEvent(
                        incident=incident,
                        kind=EventKind.RESOLVED_BY_SOURCE,
                        text="Every alert was resolved by the monitoring tool.",
                    )
                    for incident in self.resolved_now
                    if incident.status == IncidentStatus.RESOLVED
                    and incident.resolution == Resolution.SOURCE
                    and id(incident) in stored
                ),
                *(
                    IncidentEvent(
                        incident=incident,
                        kind=EventKind.FLAPPING,
                        text=(
                            f"Flapping: fired again {incident.flap_count} times soon after "
                            "the monitoring tool resolved it; it stays one incident."
                        ),
                    )
                    for incident in self.flapping_now
                ),
            ]
        )

    def _write_keys(self, live: list[_Group]) -> None:
        """Link keys: the segments of every key this batch changed are written over the
        stored ones (every stored segment of such a key was loaded): in place where it had a
        stored segment (a growing incident: one UPDATE for the batch), inserted where it
        had none, deleted where segments joined. A merged incident's loaded keys are
        deleted (folded into the survivor's)."""
        moved: list[SimpleNamespace] = []
        added: list[SimpleNamespace] = []
        dropped: list[int] = []
        for group in live:
            incident = group.incident
            for key in sorted(group.dirty):
                stored = group.stored.get(key, [])
                segments = group.spans[key]
                for pk, (first, last) in zip(stored, segments, strict=False):
                    moved.append(SimpleNamespace(id=pk, first_alert_at=first, last_alert_at=last))
                dropped += stored[len(segments) :]
                added += (
                    SimpleNamespace(
                        company_id=incident.company_id,
                        incident_id=incident.pk,
                        key=key,
                        first_alert_at=first,
                        last_alert_at=last,
                    )
                    for first, last in segments[len(stored) :]
                )
        # The loaded keys of merged incidents were folded into their survivors' above.
        dropped += [
            pk for absorbed, _ in self.merges for pks in absorbed.stored.values() for pk in pks
        ]
        if dropped:
            IncidentKey.objects.filter(pk__any=dropped).delete()
        bulk_set(IncidentKey, moved, ["first_alert_at", "last_alert_at"])
        bulk_insert(IncidentKey, added)

    def _write_merges(self) -> None:
        """Move the alerts, timeline and reasons of merged incidents to their survivors, say
        so on both timelines and audit each merge. Merges are rare (a late alert bridging
        two incidents), so a few queries per survivor."""
        by_survivor: dict[int, list[int]] = defaultdict(list)
        for absorbed, _ in self.merges:
            by_survivor[absorbed.live().incident.pk].append(absorbed.incident.pk)
        for survivor, gone in by_survivor.items():
            IncidentKey.objects.filter(incident_id__in=gone).update(incident_id=survivor)
            Alert.objects.filter(incident_id__in=gone).update(incident_id=survivor)
            IncidentEvent.objects.filter(incident_id__in=gone).update(incident_id=survivor)
            CorrelationReason.objects.filter(incident_id__in=gone).update(incident_id=survivor)
        events = []
        for absorbed, why in self.merges:
            gone, kept = absorbed.incident, absorbed.live().incident
            details = {"merged": gone.pk, "into": kept.pk, "automatic": True, "reason": why}
            events.append(
                IncidentEvent(
                    incident=kept,
                    kind=EventKind.MERGED,
                    text=f"Incident #{gone.pk} ({gone.title}) merged into this one: {why}",
                    details=details,
                )
            )
            record(
                action=MERGE_AUDIT_ACTION,
                company=self.companies[kept.company_id],
                target=kept,
                details=details,
            )
        IncidentEvent.objects.bulk_create(events)


def _labels(alert: SweepAlert) -> dict:
    labels = alert.labels
    if isinstance(labels, str):
        labels = json.loads(labels)
    return labels if isinstance(labels, dict) else {}


def coalesce(segments: list[list[datetime]], reach: timedelta) -> list[list[datetime]]:
    """Segments joined wherever the gap between them is no longer than ``reach``."""
    joined: list[list[datetime]] = []
    for first, last in sorted(segments):
        if joined and first - joined[-1][1] <= reach:
            joined[-1][1] = max(joined[-1][1], last)
        else:
            joined.append([first, last])
    return joined


def _accepts(incident: Incident) -> bool:
    """Open to alerts: accepting (not merged, not resolved by a person or a runbook, not
    reopened by hand) and open, or resolved by the source (a flap). Whether an alert is
    near enough is the link keys' business: their segments reach to the resolutions
    (``_resolve``), so a firing alert more than the window after an incident's last
    notification never finds it. (A test of the time since ``resolved_at`` here made the
    partition depend on arrival order: a resolution arriving late moves ``resolved_at``.)"""
    if not incident.accepting:
        return False
    return incident.status in OPEN_STATUSES or incident.resolution == Resolution.SOURCE


def _ranked(matches: dict[_Group, str]) -> list[_Group]:
    """The survivor first: by seniority, except that among incidents grouped by hand (which
    will not merge) the one sharing the alert's aggregation key takes it."""
    ranked = sorted(matches, key=_seniority)
    by_hand = [g for g in ranked if g.incident.grouped_by_hand]
    same_key = [g for g in by_hand if matches[g].startswith("k:")]
    if len(by_hand) > 1 and same_key:
        ranked.remove(same_key[0])
        ranked.insert(0, same_key[0])
    return ranked


def _seniority(group: _Group) -> tuple[bool, datetime, int]:
    """The survivor of a merge: a stored incident before a new one, then the oldest."""
    incident = group.incident
    return (incident.pk is None, incident.first_alert_at, incident.pk or group.seq)
