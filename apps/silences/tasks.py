"""Celery interface of silences: work that comes back when a silence or snooze ends."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.silences.services import quiet_ended_assign


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def assign_woken_incidents() -> int:
    """Beat, every minute: assign the incidents whose silence or snooze just ended."""
    return quiet_ended_assign()
