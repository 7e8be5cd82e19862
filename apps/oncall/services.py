"""Writes of on-call schedules made on the on-call page: overrides."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import record
from apps.common.errors import ValidationError
from apps.oncall.choices import OVERRIDE_AUDIT_ACTION
from apps.oncall.models import Override, Schedule
from apps.oncall.selectors import reachable_users

OVERRIDE_MAX_DAYS = 31


@transaction.atomic
def override_create(
    *, schedule: Schedule, user: User, starts_at: datetime, ends_at: datetime, actor: User
) -> Override:
    """``user`` covers ``schedule`` from ``starts_at`` to ``ends_at``. The caller has
    checked the actor may manage the schedule's company; the user must be able to see it."""
    if ends_at <= starts_at:
        message = "The cover must end after it starts."
        raise ValidationError(message, fields={"ends_at": [message]})
    if (ends_at - starts_at).days >= OVERRIDE_MAX_DAYS:
        message = f"An override covers at most {OVERRIDE_MAX_DAYS} days; edit the rotation instead."
        raise ValidationError(message, fields={"ends_at": [message]})
    if not reachable_users(company_id=schedule.company_id, user_ids=[user.pk]):
        message = f"{user} cannot work on incidents of {schedule.company.name}."
        raise ValidationError(message, fields={"user": [message]})
    override = Override.objects.create(
        schedule=schedule, user=user, starts_at=starts_at, ends_at=ends_at, created_by=actor
    )
    record(
        action=OVERRIDE_AUDIT_ACTION,
        actor=actor,
        company=schedule.company,
        target=override,
        details={
            "schedule": schedule.name,
            "user": user.email,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
        },
    )
    return override
