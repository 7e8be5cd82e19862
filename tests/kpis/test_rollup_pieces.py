"""``rollup_reads.pieces`` cuts any interval into daily buckets, hourly buckets with
coefficients and raw partial hours whose sum is the interval exactly: every instant is
counted once, nothing outside it at all. Checked on a grid of quarter hours (the finest
step of a zone's offset) and at the interval's own ends."""

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.kpis.rollup_reads import DAY, HOUR, _local_days, pieces

BASE = datetime(2025, 3, 28, tzinfo=UTC)
QUARTER = timedelta(minutes=15)

moments = st.one_of(
    st.integers(-5 * 86400, 5 * 86400).map(lambda s: BASE + timedelta(seconds=s)),
    st.integers(-120, 120).map(lambda h: BASE + h * HOUR),
    st.integers(-480, 480).map(lambda q: BASE + q * QUARTER),
)


def _coverage(start, end, probes):
    """How many times each probe instant is counted by the pieces of [start, end)."""
    part = pieces(start, end)
    counted = Counter()
    for at in probes:
        utc_day = datetime(at.year, at.month, at.day, tzinfo=UTC).date()
        hour = at.replace(minute=0, second=0, microsecond=0)
        counted[at] += part.days.count(utc_day)
        counted[at] += part.hours[hour]
        counted[at] += sum(1 for a, b in part.raw if a <= at < b)
    return part, counted


def _probes(start, end):
    low = start - 2 * DAY
    grid = [low + n * QUARTER for n in range(int((end - low + 2 * DAY) / QUARTER) + 1)]
    return {*grid, start, end, end - timedelta(microseconds=1)}


@settings(max_examples=300, deadline=None)
@given(
    start=moments,
    length=st.one_of(st.integers(0, 6 * 86400), st.integers(0, 144).map(lambda h: h * 3600)),
)
def test_pieces_count_every_instant_of_the_interval_once(start, length):
    end = start + timedelta(seconds=length)
    part, counted = _coverage(start, end, _probes(start, end))
    for at, n in counted.items():
        assert n == (1 if start <= at < end else 0), at
    # Raw rows only for the partial hours at the ends: never more than two, under an hour.
    assert len(part.raw) <= 2
    assert all(b - a < HOUR for a, b in part.raw)


@settings(max_examples=100, deadline=None)
@given(
    start_day=st.integers(-3, 3),
    days=st.integers(1, 40),
    zone=st.sampled_from(
        ["UTC", "Europe/Paris", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns"]
    ),
)
def test_local_days_of_a_zone_an_hour_off_read_two_hours_each(start_day, days, zone):
    """A range of local days: a day in UTC is one daily row; a day in a zone k hours off
    UTC, a daily row and at most 2 × min(k, 24 − k) hourly rows (an hour off: two), and
    raw rows only where the midnight is not on the hour."""
    tz = ZoneInfo(zone)
    first = (BASE + start_day * DAY).date()
    start = datetime.combine(first, datetime.min.time()).replace(tzinfo=tz)
    end = datetime.combine(first + days * DAY, datetime.min.time()).replace(tzinfo=tz)
    cut = _local_days(start.astimezone(UTC), end.astimezone(UTC), tz)
    assert [day for day, _ in cut] == [first + n * DAY for n in range(days)]
    for _day, (a, b) in cut:
        part = pieces(a, b)
        offset = abs(a.astimezone(tz).utcoffset()) / HOUR % 24
        if min(offset, 24 - offset) < 11:
            assert len(part.days) == 1
        assert (
            sum(abs(n) for n in part.hours.values()) <= 2 * math.ceil(min(offset, 24 - offset)) + 2
        )
        if zone in ("UTC", "Europe/Paris"):
            assert part.raw == []
