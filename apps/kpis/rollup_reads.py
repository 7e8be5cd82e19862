"""Figures from the rollups (apps/kpis/models.py), equal to the raw scans' figures.

A range rarely falls on bucket boundaries. ``pieces`` cuts it into buckets whose sum is
exact: the partial hours at its ends are counted from the raw rows (the indexed scans of
old), a UTC day that covers most of it is read from the daily buckets less its hours
outside the range, and the other whole hours from the hourly buckets. A range of UTC days
reads one row per company and day; a local day of a zone an hour off UTC, a day and two
hours; a zone whose midnight is not on the hour (India, Nepal, Newfoundland…) also counts
the half hours on either side of each midnight raw. Signatures read their whole months
from monthly buckets, the other whole UTC days from daily ones, the partial days raw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from apps.alerts.choices import AlertStatus
from apps.alerts.models import Alert
from apps.incidents.choices import IncidentStatus, Resolution
from apps.incidents.models import Incident
from apps.kpis.models import (
    DailyRollup,
    HourlyRollup,
    SignatureDailyRollup,
    SignatureMonthlyRollup,
)

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


def _hour_range(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours of [start, end), both on the hour."""
    return [start + n * HOUR for n in range((end - start) // HOUR)]


@dataclass
class Pieces:
    """An interval as buckets: ``days`` (UTC days, each +1), ``hours`` (UTC hours with a
    coefficient, +1 to add, −1 to take away the hours of a day outside the interval) and
    ``raw`` (intervals shorter than an hour at its ends, counted from the raw rows)."""

    days: list[date] = field(default_factory=list)
    hours: Counter = field(default_factory=Counter)
    raw: list[Interval] = field(default_factory=list)


def pieces(start: datetime, end: datetime) -> Pieces:
    """[start, end) as buckets whose sum is exact: the partial hours at its ends raw; a UTC
    day that covers more than half of it (its whole hours) from the daily table, less the
    day's hours outside it; the hours of the other days from the hourly table. A local day
    in a zone an hour off UTC is a day less an hour plus an hour; in UTC, a day."""
    first, last = _ceil(start, HOUR), _floor(end, HOUR)
    if first > last:  # within one hour
        return Pieces(raw=[(start, end)] if start < end else [])
    found = Pieces(raw=[(a, b) for a, b in ((start, first), (last, end)) if a < b])
    day = _floor(first, DAY)
    while day < last:
        low, high = max(day, first), min(day + DAY, last)
        if (high - low) * 2 > DAY:
            found.days.append(day.date())
            found.hours.subtract([*_hour_range(day, low), *_hour_range(high, day + DAY)])
        else:
            found.hours.update(_hour_range(low, high))
        day += DAY
    return found


def _local_days(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[date, Interval]]:
    """[start, end) cut at the local midnights of ``tz``: (local day, its part)."""
    days = []
    day = start.astimezone(tz).date()
    low = start
    while low < end:
        midnight = datetime.combine(day + DAY, datetime.min.time()).replace(tzinfo=tz)
        high = min(end, midnight.astimezone(UTC))
        if low < high:
            days.append((day, (low, high)))
        low = max(low, high)
        day += DAY
    return days


SUMMED = (*FIRING_COLUMNS, "incidents_opened", "incidents_self_healed")


def _bucket_sums(
    model: type[HourlyRollup] | type[DailyRollup],
    key: str,
    company_ids: Sequence[int],
    wanted: Iterable,
) -> dict:
    """{bucket: {column: sum over the companies}} of the buckets ``wanted`` (one query)."""
    wanted = sorted(set(wanted))
    if not wanted:
        return {}
    if key == "day":  # days are (nearly) consecutive: one index range, a skipped day ignored
        buckets = model.objects.filter(day__gte=wanted[0], day__lte=wanted[-1])
    else:
        buckets = model.objects.filter(hour__in=wanted)
    rows = (
        buckets.filter(company_id__in=company_ids)
        .values(key)
        .annotate(
            **{name: Sum(name) for name in SUMMED},
            **_rollup_mttr_sums(),
            **{name: Sum(name) for name in ACKNOWLEDGED_SUMS},
        )
        .order_by()
    )
    return {row.pop(key): row for row in rows}


def _add(total: Counter, part: Pieces, days: dict, hours: dict) -> None:
    for day in part.days:
        total.update(days.get(day, {}))
    for hour, sign in part.hours.items():
        total.update({name: sign * value for name, value in hours.get(hour, {}).items()})


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
    """Each local day of [start, end) and the whole range as ``pieces``: one query on the
    daily buckets, one on the hourly buckets the pieces need (none for a range of UTC
    days seen in UTC), and the raw rows of the partial hours (at the range's ends, and at
    each midnight of a zone whose midnight is not on the hour)."""
    local_days = [(day, pieces(a, b)) for day, (a, b) in _local_days(start, end, tz)]
    whole = pieces(start, end)
    every = [whole, *(part for _, part in local_days)]
    days = _bucket_sums(DailyRollup, "day", company_ids, (d for p in every for d in p.days))
    hours = _bucket_sums(
        HourlyRollup, "hour", company_ids, (h for p in every for h, n in p.hours.items() if n)
    )
    alerts: Counter = Counter()
    opened: Counter = Counter()
    healed: Counter = Counter()
    for day, part in local_days:
        sums: Counter = Counter()
        _add(sums, part, days, hours)
        alerts[day] += sum(sums[name] for name in FIRING_COLUMNS)
        opened[day] += sums["incidents_opened"]
        healed[day] += sums["incidents_self_healed"]
    raw_intervals = [interval for _, part in local_days for interval in part.raw]
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
    totals: Counter = Counter()
    _add(totals, whole, days, hours)
    mttr = _combine(
        {f"{p}_{part}": totals[f"{p}_{part}"] for p, _ in MTTR_GROUPS for part in ("count", "us")}
    )
    mtta = _combine({name: totals[name] for name in ACKNOWLEDGED_SUMS})
    if whole.raw:
        mttr = _combine(mttr, _resolved_raw(company_ids, whole.raw).aggregate(**_raw_mttr_sums()))
        mtta = _combine(mtta, acknowledged_raw(company_ids, whole.raw))
    return Figures(
        alerts={day: n for day, n in alerts.items() if n},
        incidents={day: (n, healed[day]) for day, n in opened.items() if n},
        mttr=mttr,
        mtta=mtta,
    )


def acknowledged_raw(company_ids: Sequence[int], intervals: Sequence[Interval]) -> dict:
    """``acked_count`` and ``acked_us`` (a timedelta) of the shown incidents acknowledged
    within ``intervals``, from the raw rows."""
    return Incident.objects.filter(
        _within("acknowledged_at", intervals), company_id__in=company_ids, visible=True
    ).aggregate(acked_count=Count("id"), acked_us=Sum(F("acknowledged_at") - F("first_alert_at")))


def count_since(*, company_ids: Sequence[int], since: datetime) -> tuple[int, int]:
    """(firing alerts, shown incidents) whose event / first alert is at or after ``since``:
    the partial hour raw, the hours up to the next UTC midnight, the days from then on."""
    first_hour, first_day = _ceil(since, HOUR), _ceil(since, DAY)
    firing = F("alerts_critical") + F("alerts_high") + F("alerts_medium") + F("alerts_low")
    alerts, incidents = 0, 0
    for buckets in (
        HourlyRollup.objects.filter(hour__gte=first_hour, hour__lt=first_day),
        DailyRollup.objects.filter(day__gte=first_day.date()),
    ):
        sums = buckets.filter(company_id__in=company_ids).aggregate(
            alerts=Sum(firing), incidents=Sum("incidents_opened")
        )
        alerts += sums["alerts"] or 0
        incidents += sums["incidents"] or 0
    edge = [(since, first_hour)] if since < first_hour else []
    alerts += Alert.objects.filter(
        _within("event_time", edge), company_id__in=company_ids, status=AlertStatus.FIRING
    ).count()
    incidents += Incident.objects.filter(
        _within("first_alert_at", edge), company_id__in=company_ids, visible=True
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


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def mttr_sums_by_signature(
    *, company_ids: Sequence[int], start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """The same sums per incident signature: the whole months inside the range from the
    monthly buckets, its other whole UTC days from the daily ones, the partial days at its
    ends raw."""
    inner, edges = split(start, end, DAY)
    first_day, end_day = inner[0].date(), inner[1].date()
    first_month = first_day if first_day.day == 1 else _next_month(first_day)
    end_month = end_day.replace(day=1)
    by_signature: dict[str, list[dict]] = {}

    def sums(buckets: QuerySet) -> QuerySet:
        return (
            buckets.filter(company_id__in=company_ids)
            .values("signature")
            .annotate(**_rollup_mttr_sums())
            .order_by()
        )

    if first_month < end_month:
        days = SignatureDailyRollup.objects.filter(
            Q(day__gte=first_day, day__lt=first_month) | Q(day__gte=end_month, day__lt=end_day)
        )
        months = SignatureMonthlyRollup.objects.filter(month__gte=first_month, month__lt=end_month)
        rolled = sums(days).union(sums(months), all=True)
    else:
        rolled = sums(SignatureDailyRollup.objects.filter(day__gte=first_day, day__lt=end_day))
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
