"""Reads for the dashboard, over a set of company ids the caller has already scoped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum, TextField
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from apps.alerts.choices import AlertStatus, Severity
from apps.alerts.models import Alert
from apps.incidents.choices import OPEN_STATUSES
from apps.incidents.models import Incident
from apps.kpis import rollup_reads
from apps.kpis.selectors import use_rollups

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "24h"


@dataclass(frozen=True)
class Metrics:
    critical_alerts: int
    high_alerts: int
    active_incidents: int
    period_alerts: int
    period_incidents: int

    @property
    def noise_reduction(self) -> float | None:
        """(1 − incidents / alerts) × 100 over the period, as on the KPI page (shown
        incidents only: pending ones are noise that was held back); None without alerts."""
        if not self.period_alerts:
            return None
        return (1 - self.period_incidents / self.period_alerts) * 100


def period_start(period: str, *, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - PERIODS.get(period, PERIODS[DEFAULT_PERIOD])


def active_alerts(company_ids: list[int]) -> QuerySet[Alert]:
    """Firing alerts not yet resolved, in open incidents that are shown. Scoped by the
    incident's company (an alert's is the same): the open incidents are few, and their
    alerts are read from the index on (incident, event time) that covers these columns."""
    return Alert.objects.filter(
        incident__company_id__in=company_ids,
        status=AlertStatus.FIRING,
        resolved_at__isnull=True,
        incident__status__in=OPEN_STATUSES,
        incident__visible=True,
    )


def dashboard_metrics(*, company_ids: list[int], since: datetime) -> Metrics:
    """The cards. Active alerts and open incidents are counted live (open incidents are
    few, and their alerts are found by incident, on a covering index); the period's
    figures come from the rollups on PostgreSQL (apps/kpis/rollup_reads.py), from the raw
    tables on SQLite."""
    if connection.vendor == "postgresql":
        critical, high, active_incidents = open_counts(company_ids)
    else:
        critical, high, active_incidents = scan_open_counts(company_ids)
    if use_rollups():
        period_alerts, period_incidents = rollup_reads.count_since(
            company_ids=company_ids, since=since
        )
    else:
        period_alerts, period_incidents = scan_count_since(company_ids=company_ids, since=since)
    return Metrics(
        critical_alerts=critical,
        high_alerts=high,
        active_incidents=active_incidents,
        period_alerts=period_alerts,
        period_incidents=period_incidents,
    )


def open_counts(company_ids: list[int]) -> tuple[int, int, int]:
    """(critical active alerts, high active alerts, open incidents), as ``scan_open_counts``
    counts them, from the open incidents alone: each keeps its open critical and high
    alerts (``open_critical``, ``open_high``, kept by the database: apps/incidents/
    open_counts.py), so no alert is read. Probing each open incident's alerts cost about
    10 µs an incident, over 100 ms for an MSP's 15,000 open incidents."""
    counts = Incident.objects.filter(
        company_id__in=company_ids, status__in=OPEN_STATUSES, visible=True
    ).aggregate(
        critical=Coalesce(Sum("open_critical"), 0),
        high=Coalesce(Sum("open_high"), 0),
        incidents=Count("id"),
    )
    return counts["critical"], counts["high"], counts["incidents"]


def scan_open_counts(company_ids: list[int]) -> tuple[int, int, int]:
    """(critical active alerts, high active alerts, open incidents) with the ORM, two
    queries (SQLite, and the reference ``open_counts`` is tested against)."""
    active = active_alerts(company_ids).aggregate(
        critical=Count("severity", filter=Q(severity=Severity.CRITICAL)),
        high=Count("severity", filter=Q(severity=Severity.HIGH)),
    )
    return (
        active["critical"],
        active["high"],
        Incident.objects.filter(
            company_id__in=company_ids, status__in=OPEN_STATUSES, visible=True
        ).count(),
    )


def scan_count_since(*, company_ids: list[int], since: datetime) -> tuple[int, int]:
    """(firing alerts, shown incidents) since ``since``, from the raw tables."""
    return (
        Alert.objects.filter(
            company_id__in=company_ids, event_time__gte=since, status=AlertStatus.FIRING
        ).count(),
        Incident.objects.filter(
            company_id__in=company_ids, first_alert_at__gte=since, visible=True
        ).count(),
    )


def alert_list(*, company_ids: list[int], severity: str = "", query: str = "") -> QuerySet[Alert]:
    alerts = Alert.objects.filter(company_id__in=company_ids).select_related("company")
    if severity in Severity.values:
        alerts = alerts.filter(severity=severity)
    if query:
        alerts = alerts.annotate(labels_text=Cast("labels", TextField())).filter(
            _alert_search(query)
        )
    return alerts.order_by("-event_time", "-id")


def _alert_search(query: str) -> Q:
    """Alerts whose host, signature, message, tool or labels contain ``query`` (any case),
    or whose incident has that number ("123" or "#123")."""
    match = (
        Q(asset_name__icontains=query)
        | Q(signature__icontains=query)
        | Q(message__icontains=query)
        | Q(tool_source__icontains=query)
        | Q(labels_text__icontains=query)
    )
    number = query.removeprefix("#")
    if number.isdigit():
        match |= Q(incident_id=int(number))
    return match
