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
from dataclasses import dataclass
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
ACKNOWLEDGED_SUMS = ("acked_count", "acked_us")
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
    company_ids: Sequence[int], inner: tuple[datetime, datetime | None]
) -> QuerySet[HourlyRollup]:
    hours = HourlyRollup.objects.filter(company_id__in=company_ids, hour__gte=inner[0])
    return hours.filter(hour__lt=inner[1]) if inner[1] is not None else hours


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


@dataclass(frozen=True)
class Figures:
    """A range's figures: per local day, firing alerts and (shown incidents opened, of
    those self-healed); over the range, the resolution sums (``<group>_count`` and
    ``<group>_us`` of ``MTTR_GROUPS``) and the acknowledgement sums (``acked_count``,
    ``acked_us``)."""

    alerts: dict[date, int]
    incidents: dict[date, tuple[int, int]]
    mttr: dict[str, int]
    mtta: dict[str, int]


def figures(*, company_ids: Sequence[int], start: datetime, end: datetime, tz: tzinfo) -> Figures:
    """One pass over the hourly buckets of [start, end), summed per hour in SQL and per local
    day here, plus the raw rows of the partial hours (none for a range of local days in a
    zone whose midnight is on the hour)."""
    inner, edges = split(start, end, HOUR)
    split_hours = {h for h in _midnight_hours(start, end, tz) if inner[0] <= h < inner[1]}
    firing = F(FIRING_COLUMNS[0]) + F(FIRING_COLUMNS[1]) + F(FIRING_COLUMNS[2])
    rows = (
        _hours(company_ids, inner)
        .values("hour")
        .annotate(
            firing=Sum(firing + F(FIRING_COLUMNS[3])),
            opened=Sum("incidents_opened"),
            healed=Sum("incidents_self_healed"),
            **_rollup_mttr_sums(),
            **{name: Sum(name) for name in ACKNOWLEDGED_SUMS},
        )
        .order_by()
    )
    alerts: Counter = Counter()
    opened: Counter = Counter()
    healed: Counter = Counter()
    mttr: Counter = Counter()
    mtta: Counter = Counter()
    for row in rows:
        hour = row.pop("hour")
        day_alerts, day_opened, day_healed = row.pop("firing"), row.pop("opened"), row.pop("healed")
        mtta.update({name: row.pop(name) for name in ACKNOWLEDGED_SUMS})
        mttr.update(row)
        if hour not in split_hours:
            day = hour.astimezone(tz).date()
            alerts[day] += day_alerts
            opened[day] += day_opened
            healed[day] += day_healed
    raw_intervals = [*edges, *((h, h + HOUR) for h in sorted(split_hours))]
    if raw_intervals:
        raw_alerts = (
            Alert.objects.filter(
                _within("event_time", raw_intervals),
                company_id__in=company_ids,
                status=AlertStatus.FIRING,
            )
            .annotate(day=TruncDate("event_time", tzinfo=tz))
            .values("day")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in raw_alerts:
            alerts[row["day"]] += row["n"]
        raw_incidents = (
            Incident.objects.filter(
                _within("first_alert_at", raw_intervals),
                company_id__in=company_ids,
                visible=True,
            )
            .annotate(day=TruncDate("first_alert_at", tzinfo=tz))
            .values("day")
            .annotate(
                n=Count("id"),
                healed=Count("id", filter=Q(resolution=Resolution.SELF_HEALED)),
            )
            .order_by()
        )
        for row in raw_incidents:
            opened[row["day"]] += row["n"]
            healed[row["day"]] += row["healed"]
    if edges:
        mttr.update(_combine(_resolved_raw(company_ids, edges).aggregate(**_raw_mttr_sums())))
        mtta.update(_combine(acknowledged_raw(company_ids, edges)))
    return Figures(
        alerts={day: n for day, n in alerts.items() if n},
        incidents={day: (n, healed[day]) for day, n in opened.items() if n},
        mttr=_combine(mttr),
        mtta=_combine(mtta),
    )


def acknowledged_raw(company_ids: Sequence[int], intervals: Sequence[Interval]) -> dict:
    """``acked_count`` and ``acked_us`` (a timedelta) of the shown incidents acknowledged
    within ``intervals``, from the raw rows."""
    return Incident.objects.filter(
        _within("acknowledged_at", intervals), company_id__in=company_ids, visible=True
    ).aggregate(acked_count=Count("id"), acked_us=Sum(F("acknowledged_at") - F("first_alert_at")))


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
