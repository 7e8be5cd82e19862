"""Who a schedule puts on call at an instant, and when that next changes. Pure functions of
a schedule whose rotations (with members) and overrides are loaded; no writes.

The rules, in order:
1. An override covering the instant wins over everything: its people alone are on call.
2. Otherwise the highest layer with someone on call wins; the rotations of one layer add up
   (two rotations of layer 0 put two people on call at once).
3. A rotation counts while it is within its active hours (local ``active_from`` to
   ``active_until``, wrapping past midnight; none: all day) and once its first turn started.
4. Its turns pass at ``handoff_time`` in the company's time zone, every day (daily) or on
   ``handoff_weekday`` (weekly). Turns count in local days, so 09:00 stays 09:00 across a DST
   change. A hand-off time the clocks skip is read with the offset before the jump (PEP 495
   ``fold=0``: 01:30 in a 01:00→02:00 jump hands off at 02:30 new time); one they repeat
   hands off at its first occurrence, and the second does not hand back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apps.oncall.choices import Frequency

LOOKAHEAD_DAYS = 15


@dataclass(frozen=True)
class Handoff:
    at: datetime
    users: list


def _instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time (compared in UTC: aware datetimes that share a
    tzinfo compare by wall time, which is wrong in a repeated hour)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _first_turn_day(rotation) -> date:
    if rotation.frequency == Frequency.DAILY:
        return rotation.start_date
    return rotation.start_date + timedelta(
        days=(rotation.handoff_weekday - rotation.start_date.weekday()) % 7
    )


def turn_index(rotation, at: datetime, tz: ZoneInfo) -> int | None:
    """How many turns of ``rotation`` have started by ``at`` minus one (None: none yet)."""
    at = at.astimezone(UTC)
    day = at.astimezone(tz).date()
    if rotation.frequency == Frequency.DAILY:
        if at < _instant(day, rotation.handoff_time, tz):
            day -= timedelta(days=1)
        turns = (day - _first_turn_day(rotation)).days
    else:
        day -= timedelta(days=(day.weekday() - rotation.handoff_weekday) % 7)
        if at < _instant(day, rotation.handoff_time, tz):
            day -= timedelta(days=7)
        turns = (day - _first_turn_day(rotation)).days // 7
    return turns if turns >= 0 else None


def in_active_hours(rotation, at: datetime, tz: ZoneInfo) -> bool:
    start, end = rotation.active_from, rotation.active_until
    if start is None or end is None or start == end:
        return True
    local = at.astimezone(tz).time()
    return start <= local < end if start < end else local >= start or local < end


def _members(rotation) -> list:
    return sorted(rotation.members.all(), key=lambda member: member.position)


def _unique(users: Iterable) -> list:
    seen: dict[int, object] = {}
    for user in users:
        seen.setdefault(user.pk, user)
    return list(seen.values())


def who_is_on_call(schedule, at: datetime) -> list:
    """The users ``schedule`` puts on call at ``at`` (rules in the module docstring)."""
    covering = [o for o in schedule.overrides.all() if o.starts_at <= at < o.ends_at]
    if covering:
        return _unique(o.user for o in sorted(covering, key=lambda o: o.starts_at))
    tz = schedule.company.tz
    layers: dict[int, list] = {}
    for rotation in schedule.rotations.all():
        members = _members(rotation)
        if not members or not in_active_hours(rotation, at, tz):
            continue
        turn = turn_index(rotation, at, tz)
        if turn is not None:
            layers.setdefault(rotation.layer, []).append(members[turn % len(members)].user)
    for layer in sorted(layers, reverse=True):
        return _unique(layers[layer])
    return []


def _boundaries(schedule, at: datetime) -> list[datetime]:
    """Every instant after ``at`` (within the lookahead) where who is on call may change."""
    tz = schedule.company.tz
    today = at.astimezone(tz).date()
    days = [today + timedelta(days=k) for k in range(-1, LOOKAHEAD_DAYS)]
    instants = set()
    for rotation in schedule.rotations.all():
        for day in days:
            if rotation.frequency == Frequency.DAILY or day.weekday() == rotation.handoff_weekday:
                instants.add(_instant(day, rotation.handoff_time, tz))
            for edge in (rotation.active_from, rotation.active_until):
                if edge is not None:
                    instants.add(_instant(day, edge, tz))
    for override in schedule.overrides.all():
        instants.update((override.starts_at, override.ends_at))
    return sorted(instant for instant in instants if instant > at)


def next_handoff(schedule, at: datetime) -> Handoff | None:
    """The next instant who is on call changes, and who is on call from then (None: no
    change within the next two weeks)."""
    now = {user.pk for user in who_is_on_call(schedule, at)}
    for instant in _boundaries(schedule, at):
        users = who_is_on_call(schedule, instant)
        if {user.pk for user in users} != now:
            return Handoff(at=instant, users=users)
    return None
