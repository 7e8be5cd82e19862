"""Reads of schedules: loading them for ``who_is_on_call``, and who is on call per company."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.incidents.choices import OPEN_STATUSES
from apps.oncall.models import IncidentEscalation, Override, RotationMember, Schedule
from apps.oncall.schedules import Handoff, next_handoff, who_is_on_call


def failing_escalations() -> QuerySet[IncidentEscalation]:
    """Escalations whose last attempt failed, of incidents still open and unacknowledged
    (the others stop at their next attempt: nobody waits for their pages). Read through
    the partial index of failing rows (``apps.oncall.escalation`` rule 7)."""
    return IncidentEscalation.objects.filter(
        failures__gt=0,
        finished_at__isnull=True,
        incident__status__in=OPEN_STATUSES,
        incident__acknowledged_at__isnull=True,
    )


def schedules_loaded(*, company_ids: Iterable[int], at: datetime) -> QuerySet[Schedule]:
    """The schedules of these companies with what ``who_is_on_call`` reads: their rotations
    and members, and the overrides not yet ended at ``at`` (four queries in all)."""
    return (
        Schedule.objects.filter(company_id__in=list(company_ids))
        .select_related("company")
        .prefetch_related(
            Prefetch("rotations__members", queryset=RotationMember.objects.select_related("user")),
            Prefetch(
                "overrides",
                queryset=Override.objects.filter(ends_at__gt=at).select_related("user"),
            ),
        )
    )


def on_call_user_ids(*, company_ids: Iterable[int], at: datetime) -> dict[int, list[int]]:
    """Each company that has a schedule: the ids of the users its schedules put on call at
    ``at`` (the union of its schedules). Registered with apps.incidents for assignment."""
    on_call: dict[int, list[int]] = {}
    for schedule in schedules_loaded(company_ids=company_ids, at=at):
        users = on_call.setdefault(schedule.company_id, [])
        users.extend(u.pk for u in who_is_on_call(schedule, at) if u.pk not in users)
    return on_call


def reachable_users(*, company_id: int, user_ids: Iterable[int]) -> list[User]:
    """Those of ``user_ids`` who are active and may see the company (its members, or MSP
    admins): nobody is ever paged for a company they cannot open."""
    return list(
        User.objects.filter(pk__in=list(user_ids), is_active=True)
        .filter(Q(memberships__company_id=company_id) | Q(groups__name=Role.MSP_ADMIN.value))
        .distinct()
        .order_by("pk")
    )


@dataclass(frozen=True)
class ScheduleNow:
    schedule: Schedule
    on_call: list
    next: Handoff | None
    upcoming_overrides: list[Override]


def schedules_now(*, company_id: int, at: datetime) -> list[ScheduleNow]:
    """The company's schedules with who is on call at ``at``, the next hand-off, and the
    overrides not yet over."""
    return [
        ScheduleNow(
            schedule=schedule,
            on_call=who_is_on_call(schedule, at),
            next=next_handoff(schedule, at),
            upcoming_overrides=list(schedule.overrides.all()),
        )
        for schedule in schedules_loaded(company_ids=[company_id], at=at)
    ]
