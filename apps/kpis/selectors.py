"""Reads for the KPI page, over company ids the caller has already scoped.

On PostgreSQL the alert, incident and MTTR figures come from the rollups that triggers keep
(apps/kpis/rollup_reads.py: whole buckets summed, the partial buckets at the range's ends
counted raw), so a report costs the same at ten million alerts as at ten thousand. The
``scan_*`` functions compute the same figures from the raw tables with aggregate queries
(COUNT/AVG/SUM with ``filter=``, GROUP BY day or signature): SQLite (the embedded mode)
reads them, and the tests check the rollups against them. Runbook executions are few and
read raw.

Definitions (shown on the page under "How these figures are computed"):

- *Alerts*: firing alerts whose event time falls in the range (resolved notifications are
  not alerts). Alerts of pending incidents count.
- *Incidents*: visible incidents whose first alert falls in the range. Pending incidents
  (fewer alerts than the company's minimum) reached nobody: they are suppressed noise.
- *Noise reduction* = (1 − incidents / alerts) × 100. *Self-healed* = incidents of the
  range resolved by a runbook / incidents of the range × 100.
- *MTTR*: average of resolved_at − first alert over the visible incidents *resolved* in the
  range, overall and split by resolution: self-healed (automated), by a technician (manual)
  and by the monitoring tool (source, shown apart: nobody fixed anything, so it belongs to
  neither side of the comparison). Reduction = (manual − automated) / manual × 100.
- *MTTA*: average of acknowledged_at − first alert over the visible incidents
  *acknowledged* in the range (rollups: ``acked_count``/``acked_us`` by acknowledgement hour).
- *Runbooks*: executions requested in the range. Success rate = successes / runs that
  ended (success, failure, time-out); approvals rejected or expired and manual-step guides
  did not run. Time saved (an estimate) = Σ over successful runs of (manual MTTR of the
  incident's signature in the range, else the overall manual MTTR − the run's duration).
- Days are calendar days in the current time zone; the range includes both end days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from urllib.parse import urlencode

from django.db import connection, models
from django.db.models import Aggregate, Avg, Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.alerts.choices import AlertStatus
from apps.alerts.models import Alert
from apps.incidents.choices import IncidentStatus, Resolution
from apps.incidents.models import Incident
from apps.kpis import rollup_reads
from apps.runbooks.choices import ExecutionStatus
from apps.runbooks.models import RunbookExecution


class Rating(models.TextChoices):
    EXCELLENT = "excellent", "Excellent"
    GOOD = "good", "Good"
    NEEDS_IMPROVEMENT = "needs-improvement", "Needs improvement"
    NO_DATA = "no-data", "No data"


@dataclass(frozen=True)
class Thresholds:
    excellent: float
    good: float

    def rate(self, value: float | None) -> Rating:
        if value is None:
            return Rating.NO_DATA
        if value >= self.excellent:
            return Rating.EXCELLENT
        if value >= self.good:
            return Rating.GOOD
        return Rating.NEEDS_IMPROVEMENT


NOISE_REDUCTION = Thresholds(excellent=40, good=20)
SELF_HEALED = Thresholds(excellent=20, good=10)
PATCH_COMPLIANCE = Thresholds(excellent=95, good=90)


def percent(part: int, whole: int) -> float | None:
    """part / whole × 100, None when ``whole`` is 0 (one division: exact at thresholds)."""
    return part * 100 / whole if whole else None


def reduction(*, manual: timedelta | None, automated: timedelta | None) -> float | None:
    """How much shorter automated resolution is than manual, in % of the manual time."""
    if manual is None or automated is None or not manual:
        return None
    return (manual - automated) / manual * 100


@dataclass(frozen=True)
class Period:
    """Calendar days ``first_day`` … ``last_day`` (both included) in ``tz``."""

    first_day: date
    last_day: date
    tz: tzinfo

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first_day, time.min), self.tz)

    @property
    def end(self) -> datetime:
        """The first instant after the range."""
        next_day = self.last_day + timedelta(days=1)
        return timezone.make_aware(datetime.combine(next_day, time.min), self.tz)

    @property
    def length(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=n) for n in range(self.length)]

    @property
    def query(self) -> str:
        """The range as a query string (``from=…&to=…``)."""
        return urlencode({"from": self.first_day.isoformat(), "to": self.last_day.isoformat()})


@dataclass(frozen=True)
class DayPoint:
    day: date
    alerts: int
    incidents: int
    self_healed: int

    @property
    def noise_reduction(self) -> float | None:
        return percent(self.alerts - self.incidents, self.alerts)

    @property
    def self_healed_pct(self) -> float | None:
        return percent(self.self_healed, self.incidents)


@dataclass(frozen=True)
class Totals:
    alerts: int
    incidents: int
    self_healed: int

    @property
    def noise_reduction(self) -> float | None:
        return percent(self.alerts - self.incidents, self.alerts)

    @property
    def noise_rating(self) -> Rating:
        return NOISE_REDUCTION.rate(self.noise_reduction)

    @property
    def self_healed_pct(self) -> float | None:
        return percent(self.self_healed, self.incidents)

    @property
    def self_healed_rating(self) -> Rating:
        return SELF_HEALED.rate(self.self_healed_pct)


@dataclass(frozen=True)
class Mttr:
    """Resolution times of the incidents resolved in the range."""

    resolved: int
    overall: timedelta | None
    automated_count: int
    automated: timedelta | None
    manual_count: int
    manual: timedelta | None
    source_count: int
    source: timedelta | None

    @property
    def reduction(self) -> float | None:
        return reduction(manual=self.manual, automated=self.automated)


@dataclass(frozen=True)
class SignatureMttr:
    signature: str
    mttr: Mttr


@dataclass(frozen=True)
class RunbookStats:
    runbook_id: int
    name: str
    executions: int
    succeeded: int
    failed: int
    success_time: timedelta
    time_saved: timedelta | None

    @property
    def success_rate(self) -> float | None:
        return percent(self.succeeded, self.succeeded + self.failed)

    @property
    def avg_duration(self) -> timedelta | None:
        return self.success_time / self.succeeded if self.succeeded else None


@dataclass(frozen=True)
class KpiReport:
    period: Period
    days: list[DayPoint]
    totals: Totals
    mttr: Mttr
    mtta: Mtta
    signatures: list[SignatureMttr]
    runbooks: list[RunbookStats]

    @property
    def time_saved(self) -> timedelta | None:
        saved = [r.time_saved for r in self.runbooks if r.time_saved is not None]
        return sum(saved, timedelta()) if saved else None


def use_rollups() -> bool:
    """The rollups exist on PostgreSQL (their triggers); SQLite reads the raw tables."""
    return connection.vendor == "postgresql"


def alerts_per_day(*, company_ids: Sequence[int], period: Period) -> dict[date, int]:
    """Firing alerts per day of the period (days without any are missing)."""
    if use_rollups():
        return _figures(company_ids, period).alerts
    return scan_alerts_per_day(company_ids=company_ids, period=period)


def scan_alerts_per_day(*, company_ids: Sequence[int], period: Period) -> dict[date, int]:
    return dict(
        Alert.objects.filter(
            company_id__in=company_ids,
            status=AlertStatus.FIRING,
            event_time__gte=period.start,
            event_time__lt=period.end,
        )
        .annotate(day=TruncDate("event_time", tzinfo=period.tz))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )


def incidents_per_day(*, company_ids: Sequence[int], period: Period) -> dict[date, tuple[int, int]]:
    """(incidents, self-healed) per day of the period (days without any are missing)."""
    if use_rollups():
        return _figures(company_ids, period).incidents
    return scan_incidents_per_day(company_ids=company_ids, period=period)


def scan_incidents_per_day(
    *, company_ids: Sequence[int], period: Period
) -> dict[date, tuple[int, int]]:
    rows = (
        Incident.objects.filter(
            company_id__in=company_ids,
            visible=True,
            first_alert_at__gte=period.start,
            first_alert_at__lt=period.end,
        )
        .annotate(day=TruncDate("first_alert_at", tzinfo=period.tz))
        .values("day")
        .annotate(n=Count("id"), healed=Count("id", filter=Q(resolution=Resolution.SELF_HEALED)))
        .order_by()
        .values_list("day", "n", "healed")
    )
    return {day: (n, healed) for day, n, healed in rows}


def _figures(company_ids: Sequence[int], period: Period) -> rollup_reads.Figures:
    return rollup_reads.figures(
        company_ids=company_ids, start=period.start, end=period.end, tz=period.tz
    )


def _days(
    period: Period, alerts: dict[date, int], incidents: dict[date, tuple[int, int]]
) -> list[DayPoint]:
    return [DayPoint(day, alerts.get(day, 0), *incidents.get(day, (0, 0))) for day in period.days]


def daily_series(*, company_ids: Sequence[int], period: Period) -> list[DayPoint]:
    """One point per day of the period, zeros on quiet days (one pass over the rollups, or
    two GROUP BY day queries over the raw tables)."""
    if use_rollups():
        figures = _figures(company_ids, period)
        return _days(period, figures.alerts, figures.incidents)
    alerts = scan_alerts_per_day(company_ids=company_ids, period=period)
    incidents = scan_incidents_per_day(company_ids=company_ids, period=period)
    return _days(period, alerts, incidents)


def totals_of(days: Sequence[DayPoint]) -> Totals:
    return Totals(
        alerts=sum(d.alerts for d in days),
        incidents=sum(d.incidents for d in days),
        self_healed=sum(d.self_healed for d in days),
    )


def _resolved_in(company_ids: Sequence[int], period: Period) -> QuerySet[Incident]:
    return Incident.objects.filter(
        company_id__in=company_ids,
        visible=True,
        status=IncidentStatus.RESOLVED,
        resolved_at__gte=period.start,
        resolved_at__lt=period.end,
    )


def _mttr_aggregates() -> dict[str, Aggregate]:
    duration = F("resolved_at") - F("first_alert_at")
    by = {
        "automated": Q(resolution=Resolution.SELF_HEALED),
        "manual": Q(resolution=Resolution.MANUAL),
        "source": Q(resolution=Resolution.SOURCE),
    }
    aggregates: dict[str, Aggregate] = {"resolved": Count("id"), "overall": Avg(duration)}
    for name, condition in by.items():
        aggregates[f"{name}_count"] = Count("id", filter=condition)
        aggregates[name] = Avg(duration, filter=condition)
    return aggregates


def _average(total_us: int, count: int) -> timedelta | None:
    return timedelta(microseconds=total_us / count) if count else None


def mttr_from_sums(sums: dict[str, int]) -> Mttr:
    """An Mttr from counts and summed resolution times in µs (rollup_reads.mttr_sums)."""
    return Mttr(
        resolved=sums.get("resolved_count", 0),
        overall=_average(sums.get("resolved_us", 0), sums.get("resolved_count", 0)),
        automated_count=sums.get("automated_count", 0),
        automated=_average(sums.get("automated_us", 0), sums.get("automated_count", 0)),
        manual_count=sums.get("manual_count", 0),
        manual=_average(sums.get("manual_us", 0), sums.get("manual_count", 0)),
        source_count=sums.get("source_count", 0),
        source=_average(sums.get("source_us", 0), sums.get("source_count", 0)),
    )


def mttr_summary(*, company_ids: Sequence[int], period: Period) -> Mttr:
    if use_rollups():
        return mttr_from_sums(_figures(company_ids, period).mttr)
    return scan_mttr_summary(company_ids=company_ids, period=period)


def scan_mttr_summary(*, company_ids: Sequence[int], period: Period) -> Mttr:
    return Mttr(**_resolved_in(company_ids, period).aggregate(**_mttr_aggregates()))


@dataclass(frozen=True)
class Mtta:
    acknowledged: int
    overall: timedelta | None


def mtta_from_sums(sums: dict[str, int]) -> Mtta:
    """An Mtta from the count and summed times to acknowledge in µs (rollup_reads)."""
    count = sums.get("acked_count", 0)
    return Mtta(acknowledged=count, overall=_average(sums.get("acked_us", 0), count))


def mtta_summary(*, company_ids: Sequence[int], period: Period) -> Mtta:
    """Mean time to acknowledge: average of acknowledged_at − first alert over the visible
    incidents acknowledged in the range."""
    if use_rollups():
        return mtta_from_sums(_figures(company_ids, period).mtta)
    return scan_mtta_summary(company_ids=company_ids, period=period)


def scan_mtta_summary(*, company_ids: Sequence[int], period: Period) -> Mtta:
    return Mtta(
        **Incident.objects.filter(
            company_id__in=company_ids,
            visible=True,
            acknowledged_at__gte=period.start,
            acknowledged_at__lt=period.end,
        ).aggregate(
            acknowledged=Count("id"), overall=Avg(F("acknowledged_at") - F("first_alert_at"))
        )
    )


def mttr_by_signature(*, company_ids: Sequence[int], period: Period) -> list[SignatureMttr]:
    """MTTR per signature, most resolved first."""
    if not use_rollups():
        return scan_mttr_by_signature(company_ids=company_ids, period=period)
    sums = rollup_reads.mttr_sums_by_signature(
        company_ids=company_ids, start=period.start, end=period.end
    )
    rows = [
        SignatureMttr(signature=signature, mttr=mttr_from_sums(values))
        for signature, values in sums.items()
        if values.get("resolved_count")
    ]
    return sorted(rows, key=lambda row: (-row.mttr.resolved, row.signature))


def scan_mttr_by_signature(*, company_ids: Sequence[int], period: Period) -> list[SignatureMttr]:
    """MTTR per signature from the raw incidents (one GROUP BY signature query)."""
    rows = (
        _resolved_in(company_ids, period)
        .values("signature")
        .annotate(**_mttr_aggregates())
        .order_by("-resolved", "signature")
    )
    return [SignatureMttr(signature=row.pop("signature"), mttr=Mttr(**row)) for row in rows]


def runbook_stats(
    *,
    company_ids: Sequence[int],
    period: Period,
    manual_mttr: timedelta | None,
    signatures: Sequence[SignatureMttr],
) -> list[RunbookStats]:
    """Per runbook: executions requested in the range, outcomes, and the time saved
    estimated against ``signatures``' manual MTTR (``manual_mttr`` for other signatures).

    One query grouped by (runbook, incident signature), so each successful run is weighed
    against the manual time of its own signature; the groups are then summed per runbook.
    """
    baselines = {s.signature: s.mttr.manual for s in signatures if s.mttr.manual is not None}
    succeeded = Q(status=ExecutionStatus.SUCCESS)
    groups = (
        RunbookExecution.objects.filter(
            company_id__in=company_ids,
            created_at__gte=period.start,
            created_at__lt=period.end,
        )
        .values("runbook_id", "runbook__name", "incident__signature")
        .annotate(
            executions=Count("id"),
            succeeded=Count("id", filter=succeeded),
            failed=Count(
                "id", filter=Q(status__in=[ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT])
            ),
            success_time=Sum(F("finished_at") - F("started_at"), filter=succeeded),
        )
        .order_by()
    )
    totals: dict[int, dict] = {}
    for group in groups:
        runbook = totals.setdefault(
            group["runbook_id"],
            {
                "runbook_id": group["runbook_id"],
                "name": group["runbook__name"],
                "executions": 0,
                "succeeded": 0,
                "failed": 0,
                "success_time": timedelta(),
                "time_saved": None if manual_mttr is None else timedelta(),
            },
        )
        success_time = group["success_time"] or timedelta()
        runbook["executions"] += group["executions"]
        runbook["succeeded"] += group["succeeded"]
        runbook["failed"] += group["failed"]
        runbook["success_time"] += success_time
        if manual_mttr is not None:
            baseline = baselines.get(group["incident__signature"], manual_mttr)
            runbook["time_saved"] += group["succeeded"] * baseline - success_time
    stats = [RunbookStats(**values) for values in totals.values()]
    return sorted(stats, key=lambda s: (-s.executions, s.name.lower(), s.runbook_id))


def kpi_report(*, company_ids: Sequence[int], period: Period) -> KpiReport:
    if use_rollups():
        figures = _figures(company_ids, period)
        days = _days(period, figures.alerts, figures.incidents)
        mttr = mttr_from_sums(figures.mttr)
        mtta = mtta_from_sums(figures.mtta)
    else:
        days = daily_series(company_ids=company_ids, period=period)
        mttr = scan_mttr_summary(company_ids=company_ids, period=period)
        mtta = scan_mtta_summary(company_ids=company_ids, period=period)
    signatures = mttr_by_signature(company_ids=company_ids, period=period)
    return KpiReport(
        period=period,
        days=days,
        totals=totals_of(days),
        mttr=mttr,
        mtta=mtta,
        signatures=signatures,
        runbooks=runbook_stats(
            company_ids=company_ids,
            period=period,
            manual_mttr=mttr.manual,
            signatures=signatures,
        ),
    )
