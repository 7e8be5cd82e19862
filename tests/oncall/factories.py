"""Building on-call schedules and escalation policies in tests."""

from __future__ import annotations

from datetime import date, datetime, time

from apps.oncall.choices import Frequency, Target
from apps.oncall.models import (
    EscalationPolicy,
    EscalationStep,
    Override,
    Rotation,
    RotationMember,
    Schedule,
)


def schedule_of(company, name: str = "Primary") -> Schedule:
    return Schedule.objects.create(company=company, name=name)


def rotation(
    schedule: Schedule,
    users: list,
    *,
    frequency: str = Frequency.DAILY,
    handoff: time = time(9, 0),
    weekday: int = 0,
    start: date = date(2026, 1, 5),
    layer: int = 0,
    active: tuple[time, time] | None = None,
    name: str = "",
) -> Rotation:
    created = Rotation.objects.create(
        schedule=schedule,
        name=name or f"Rotation {layer}",
        layer=layer,
        frequency=frequency,
        handoff_time=handoff,
        handoff_weekday=weekday,
        start_date=start,
        active_from=active[0] if active else None,
        active_until=active[1] if active else None,
    )
    for position, user in enumerate(users):
        RotationMember.objects.create(rotation=created, user=user, position=position)
    return created


def override(schedule: Schedule, user, starts_at: datetime, ends_at: datetime) -> Override:
    return Override.objects.create(
        schedule=schedule, user=user, starts_at=starts_at, ends_at=ends_at
    )


def policy(company, steps: list[tuple], *, severity: str = "", repeat: int = 0, repeat_after=15):
    """``steps``: (wait_minutes, target[, user or schedule]) in order."""
    created = EscalationPolicy.objects.create(
        company=company,
        name=f"Policy {severity or 'any'}",
        severity=severity,
        repeat=repeat,
        repeat_after_minutes=repeat_after,
    )
    for position, (wait, target, *extra) in enumerate(steps):
        EscalationStep.objects.create(
            policy=created,
            position=position,
            wait_minutes=wait,
            target=target,
            user=extra[0] if extra and target == Target.USER else None,
            schedule=extra[0] if extra and target == Target.ON_CALL else None,
        )
    return created
