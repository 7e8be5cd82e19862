"""Figures from the rollups (apps/kpis/models.py), equal to the raw scans' figures.

A range rarely falls on bucket boundaries: the buckets wholly inside it are summed, and the
raw rows of the partial buckets at its ends are counted with the indexed scans of old (at
most an hour, or a day for signatures, at each end). A per-day series in a time zone whose
midnight is not on a UTC hour (India, Nepal, Newfoundland…) counts the hour holding each
midnight from the raw rows too, so every bucket summed lies within one local day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from apps.alerts.choices import AlertStatus
from apps.alerts.models import Alert
from apps.incidents.choices import IncidentStatus, Resolution
from apps.incidents.models import Incident
from apps.kpis.models import HourlyRollup, SignatureDailyRollup

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FIRING_COLUMNS = ("alerts_critical", "alerts_high", "alerts_medium", "alerts_low")
# (rollup column prefix, resolution or None for all resolved incidents).
MTTR_GROUPS = (
    ("resolved", None),
    ("automated", Resolution.SELF_HEALED),
    ("manual", Resolution.MANUAL),
    ("source", Resolution.SOURCE),
)
Interval = tuple[datetime, datetime]


def _floor(moment: datetime, size: timedelta) -> datetime:
    """``moment`` rounded down to a multiple of ``size`` (an hour or a day) in UTC."""
    utc = moment.astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (utc - epoch) // size * size


def _ceil(moment: datetime, size: timedelta) -> datetime:
    floor = _floor(moment, size)
    return floor if floor == moment else floor + size


def split(
    start: datetime, end: datetime | None, size: timedelta
) -> tuple[tuple[datetime, datetime | None], list[Interval]]:
    """[start, end) as the whole buckets inside it and the partial intervals at its ends;
    ``end`` None: up to any time (the buckets then have no upper bound either)."""
    inner_start = _ceil(start, size)
    if end is None:
        return (inner_start, None), [(start, inner_start)] if start < inner_start else []
    inner_end = _floor(end, size)
    if inner_start >= inner_end:
        return (inner_start, inner_start), [(start, end)] if start < end else []
    edges = [(start, inner_start), (inner_end, end)]
    return (inner_start, inner_end), [(a, b) for a, b in edges if a < b]


def _within(field: str, intervals: Iterable[Interval]) -> Q:
    match = Q(pk__in=[])
    for a, b in intervals:
        match |= Q(**{f"{field}__gte": a, f"{field}__lt": b})
    return match


def _hours(
    company_ids: Sequence[int],
    inner: tuple[datetime, datetime | None],
    skipped: Sequence[datetime] = (),
) -> QuerySet[HourlyRollup]:
    hours = HourlyRollup.objects.filter(company_id__in=company_ids, hour__gte=inner[0])
    if inner[1] is not None:
        hours = hours.filter(hour__lt=inner[1])
    return hours.exclude(hour__in=list(skipped)) if skipped else hours


def _midnight_hours(start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """The UTC hours holding a local midnight of (start, end) that is not on the hour."""
    hours = []
    day = start.astimezone(tz).date() + DAY
    while True:
        midnight = datetime.combine(day, datetime.min.time()).replace(tzinfo=tz)
        midnight = midnight.astimezone(UTC).astimezone(tz)  # normalised (DST gaps)
        if midnight >= end:
            return hours
        if _floor(midnight, HOUR) != midnight:
            hours.append(_floor(midnight, HOUR))
        day += DAY


def _daily(
    company_ids: Sequence[int],
    start: datetime,
    end: datetime,
    tz: tzinfo,
    columns: dict[str, str],
    raw: QuerySet,
    raw_field: str,
    raw_counts: dict,
) -> dict[date, dict[str, int]]:
    """Per local day: the sums of the rollup ``columns`` (name → expression over columns)
    over the whole hours of each day, plus ``raw_counts`` over ``raw``'s rows of the other
    moments (``raw_field`` their time)."""
    inner, edges = split(start, end, HOUR)
    split_hours = [h for h in _midnight_hours(start, end, tz) if inner[0] <= h < inner[1]]
    days: dict[date, Counter] = {}
    rows = (
        _hours(company_ids, inner, split_hours)
        .annotate(day=TruncDate("hour", tzinfo=tz))
        .values("day")
        .annotate(**{name: Sum(expression) for name, expression in columns.items()})
        .order_by()
    )
    for row in rows:
        day = row.pop("day")
        days.setdefault(day, Counter()).update({k: v or 0 for k, v in row.items()})
    raw_intervals = [*edges, *((h, h + HOUR) for h in split_hours)]
    if raw_intervals:
        extra = (
            raw.filter(_within(raw_field, raw_intervals))
            .annotate(day=TruncDate(raw_field, tzinfo=tz))
            .values("day")
            .annotate(**raw_counts)
            .order_by()
        )
        for row in extra:
            day = row.pop("day")
            days.setdefault(day, Counter()).update(row)
    return {day: dict(counts) for day, counts in days.items()}


def alerts_per_day(
    *, company_ids: Sequence[int], start: datetime, end: datetime, tz: tzinfo
) -> dict[date, int]:
    """Firing alerts per local day of [start, end) (days without any are missing)."""
    firing = F(FIRING_COLUMNS[0]) + F(FIRING_COLUMNS[1]) + F(FIRING_COLUMNS[2])
    days = _daily(
        company_ids,
        start,
        end,
        tz,
        {"n": firing + F(FIRING_COLUMNS[3])},
        Alert.objects.filter(company_id__in=company_ids, status=AlertStatus.FIRING),
        "event_time",
        {"n": Count("id")},
    )
    return {day: counts["n"] for day, counts in days.items() if counts.get("n")}


def incidents_per_day(
    *, company_ids: Sequence[int], start: datetime, end: datetime, tz: tzinfo
) -> dict[date, tuple[int, int]]:
    """(shown incidents opened, of those self-healed) per local day of [start, end)."""
    days = _daily(
        company_ids,
        start,
        end,
        tz,
        {"n": F("incidents_opened"), "healed": F("incidents_self_healed")},
        Incident.objects.filter(company_id__in=company_ids, visible=True),
        "first_alert_at",
        {"n": Count("id"), "healed": Count("id", filter=Q(resolution=Resolution.SELF_HEALED))},
    )
    return {
        day: (counts.get("n", 0), counts.get("healed", 0))
        for day, counts in days.items()
        if counts.get("n")
    }


def count_since(*, company_ids: Sequence[int], since: datetime) -> tuple[int, int]:
    """(firing alerts, shown incidents) whose event / first alert is at or after ``since``."""
    inner, edges = split(since, None, HOUR)
    sums = _hours(company_ids, inner).aggregate(
        alerts=Sum(F("alerts_critical") + F("alerts_high") + F("alerts_medium") + F("alerts_low")),
        incidents=Sum("incidents_opened"),
    )
    alerts = (sums["alerts"] or 0) + Alert.objects.filter(
        _within("event_time", edges), company_id__in=company_ids, status=AlertStatus.FIRING
    ).count()
    incidents = (sums["incidents"] or 0) + Incident.objects.filter(
        _within("first_alert_at", edges), company_id__in=company_ids, visible=True
    ).count()
    return alerts, incidents


def _resolved_raw(company_ids: Sequence[int], intervals: Sequence[Interval]) -> QuerySet:
    return Incident.objects.filter(
        _within("resolved_at", intervals),
        company_id__in=company_ids,
        visible=True,
        status=IncidentStatus.RESOLVED,
    )


def _raw_mttr_sums() -> dict:
    duration = F("resolved_at") - F("first_alert_at")
    sums: dict = {}
    for prefix, resolution in MTTR_GROUPS:
        condition = Q(resolution=resolution) if resolution else Q()
        sums[f"{prefix}_count"] = Count("id", filter=condition)
        sums[f"{prefix}_us"] = Sum(duration, filter=condition)
    return sums


def _rollup_mttr_sums() -> dict:
    return {
        f"{prefix}_{part}": Sum(f"{prefix}_{part}")
        for prefix, _ in MTTR_GROUPS
        for part in ("count", "us")
    }


def _as_microseconds(value: int | timedelta | None) -> int:
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    return value or 0


def _combine(*rows: dict) -> dict[str, int]:
    total: Counter = Counter()
    for row in rows:
        total.update({k: _as_microseconds(v) for k, v in row.items() if k != "signature"})
    return dict(total)


def mttr_sums(*, company_ids: Sequence[int], start: datetime, end: datetime) -> dict[str, int]:
    """Counts and summed resolution times (µs) of the shown incidents resolved in [start,
    end), overall and per resolution: ``resolved_count``, ``resolved_us``, ``automated_*``,
    ``manual_*``, ``source_*``."""
    inner, edges = split(start, end, HOUR)
    rolled = _hours(company_ids, inner).aggregate(**_rollup_mttr_sums())
    raw = _resolved_raw(company_ids, edges).aggregate(**_raw_mttr_sums()) if edges else {}
    return _combine(rolled, raw)


def mttr_sums_by_signature(
    *, company_ids: Sequence[int], start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """The same sums per incident signature (UTC-day buckets)."""
    inner, edges = split(start, end, DAY)
    by_signature: dict[str, list[dict]] = {}
    rolled = (
        SignatureDailyRollup.objects.filter(
            company_id__in=company_ids, day__gte=inner[0].date(), day__lt=inner[1].date()
        )
        .values("signature")
        .annotate(**_rollup_mttr_sums())
        .order_by()
    )
    for row in rolled:
        by_signature.setdefault(row["signature"], []).append(row)
    if edges:
        raw = (
            _resolved_raw(company_ids, edges)
            .values("signature")
            .annotate(**_raw_mttr_sums())
            .order_by()
        )
        for row in raw:
            by_signature.setdefault(row["signature"], []).append(row)
    return {signature: _combine(*rows) for signature, rows in by_signature.items()}
