"""Reads of patch compliance, over company ids (or companies) the caller has already scoped.

Current figures are the snapshots of each company's latest successful sync run. The trend
is one point per day over the last 30 days (days of the site's time zone, UTC): the share
of compliant instances over that day's successful runs, read from the runs' totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from apps.compliance.models import Environment, InstanceSnapshot, SyncRun
from apps.tenants.models import AwsLink, Company

TREND_DAYS = 30
STALE_AFTER = timedelta(hours=2)
EXCELLENT = 95.0
GOOD = 90.0


def percent_of(part: int, whole: int) -> float | None:
    return part / whole * 100 if whole else None


def rating_for(percent: float | None) -> str | None:
    """The KPI rating: Excellent ≥ 95 %, Good ≥ 90 %, else Needs improvement; None without
    data."""
    if percent is None:
        return None
    if percent >= EXCELLENT:
        return "Excellent"
    if percent >= GOOD:
        return "Good"
    return "Needs improvement"


@dataclass(frozen=True)
class Tally:
    instances: int = 0
    compliant: int = 0
    critical_missing: int = 0
    high_missing: int = 0

    @property
    def non_compliant(self) -> int:
        return self.instances - self.compliant

    @property
    def percent(self) -> float | None:
        return percent_of(self.compliant, self.instances)

    @property
    def rating(self) -> str | None:
        return rating_for(self.percent)


@dataclass(frozen=True)
class EnvironmentTally(Tally):
    environment: str = Environment.UNKNOWN

    @property
    def label(self) -> str:
        return Environment(self.environment).label


@dataclass(frozen=True)
class TrendPoint:
    day: date
    percent: float | None

    @property
    def rating(self) -> str | None:
        return rating_for(self.percent)


@dataclass(frozen=True)
class CompanyCompliance:
    company: Company
    linked: bool
    latest_run: SyncRun | None
    synced_run: SyncRun | None
    environments: list[EnvironmentTally]
    trend: list[TrendPoint]
    now: datetime

    @property
    def totals(self) -> Tally:
        return Tally(
            instances=sum(e.instances for e in self.environments),
            compliant=sum(e.compliant for e in self.environments),
            critical_missing=sum(e.critical_missing for e in self.environments),
            high_missing=sum(e.high_missing for e in self.environments),
        )

    @property
    def failed(self) -> bool:
        """The latest sync failed (the figures, if any, are from an earlier one)."""
        return self.latest_run is not None and not self.latest_run.ok

    @property
    def stale(self) -> bool:
        return self.synced_run is not None and self.now - self.synced_run.finished_at > STALE_AFTER


def _latest_ok_run_ids(company_ids: list[int]) -> QuerySet:
    """A subquery: the id of each company's latest successful run."""
    latest = (
        SyncRun.objects.filter(company=OuterRef("pk"), ok=True)
        .order_by("-finished_at", "-pk")
        .values("pk")[:1]
    )
    return (
        Company.objects.filter(pk__in=company_ids)
        .annotate(run_id=Subquery(latest))
        .values("run_id")
    )


def current_snapshots(*, company_ids: list[int]) -> QuerySet[InstanceSnapshot]:
    """Every instance's latest snapshot: those of each company's latest successful run."""
    return InstanceSnapshot.objects.filter(run_id__in=_latest_ok_run_ids(company_ids))


def compliance_summary(*, company_ids: list[int]) -> dict:
    """Current totals over the companies: instances, compliant, percent, rating and the
    critical and high patches missing (for the KPI page)."""
    totals = current_snapshots(company_ids=company_ids).aggregate(
        instances=Count("pk"),
        compliant=Count("pk", filter=Q(compliant=True)),
        critical_missing=Coalesce(Sum("critical_missing"), 0),
        high_missing=Coalesce(Sum("high_missing"), 0),
    )
    tally = Tally(**totals)
    return {**totals, "percent": tally.percent, "rating": tally.rating}


def instance_list(
    *, company_ids: list[int], non_compliant: bool = False, environment: str = ""
) -> QuerySet[InstanceSnapshot]:
    """Current snapshots, the worst first."""
    snapshots = current_snapshots(company_ids=company_ids).select_related("company")
    if non_compliant:
        snapshots = snapshots.filter(compliant=False)
    if environment in Environment.values:
        snapshots = snapshots.filter(environment=environment)
    return snapshots.order_by(
        "compliant", "-critical_missing", "-high_missing", "company__name", "instance_id"
    )


def compliance_overview(*, companies: list[Company], now: datetime) -> list[CompanyCompliance]:
    """Per company: AWS link or not, latest and latest successful run, the per-environment
    breakdown and the trend. Four queries, whatever the number of companies."""
    ids = [c.pk for c in companies]
    runs = SyncRun.objects.filter(company=OuterRef("pk")).order_by("-finished_at", "-pk")
    heads = {
        row["pk"]: row
        for row in Company.objects.filter(pk__in=ids)
        .annotate(
            linked=Exists(AwsLink.objects.filter(company=OuterRef("pk")).exclude(role_arn="")),
            latest_id=Subquery(runs.values("pk")[:1]),
            latest_ok_id=Subquery(runs.filter(ok=True).values("pk")[:1]),
        )
        .values("pk", "linked", "latest_id", "latest_ok_id")
    }
    run_ids = {
        run_id for row in heads.values() for run_id in (row["latest_id"], row["latest_ok_id"])
    }
    loaded = SyncRun.objects.in_bulk([run_id for run_id in run_ids if run_id is not None])
    environments = _environments([r["latest_ok_id"] for r in heads.values() if r["latest_ok_id"]])
    trends = _trends(ids, now=now)
    overview = []
    for company in companies:
        head = heads[company.pk]
        overview.append(
            CompanyCompliance(
                company=company,
                linked=head["linked"],
                latest_run=loaded.get(head["latest_id"]),
                synced_run=loaded.get(head["latest_ok_id"]),
                environments=environments.get(company.pk, []),
                trend=trends[company.pk],
                now=now,
            )
        )
    return overview


def _environments(run_ids: list[int]) -> dict[int, list[EnvironmentTally]]:
    rows = (
        InstanceSnapshot.objects.filter(run_id__in=run_ids)
        .values("company_id", "environment")
        .annotate(
            instances=Count("pk"),
            compliant=Count("pk", filter=Q(compliant=True)),
            critical_missing=Sum("critical_missing"),
            high_missing=Sum("high_missing"),
        )
        .order_by()
    )
    order = {value: i for i, value in enumerate(Environment.values)}
    by_company: dict[int, list[EnvironmentTally]] = {}
    for row in sorted(rows, key=lambda r: order[r["environment"]]):
        by_company.setdefault(row.pop("company_id"), []).append(EnvironmentTally(**row))
    return by_company


def _trends(company_ids: list[int], *, now: datetime) -> dict[int, list[TrendPoint]]:
    days = [timezone.localdate(now) - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
    since = timezone.make_aware(datetime.combine(days[0], time.min))
    rows = (
        SyncRun.objects.filter(company_id__in=company_ids, ok=True, finished_at__gte=since)
        .annotate(day=TruncDate("finished_at"))
        .values("company_id", "day")
        .annotate(instances=Sum("instance_count"), compliant=Sum("compliant_count"))
        .order_by()
    )
    daily = {(r["company_id"], r["day"]): percent_of(r["compliant"], r["instances"]) for r in rows}
    return {
        company_id: [TrendPoint(day=day, percent=daily.get((company_id, day))) for day in days]
        for company_id in company_ids
    }
