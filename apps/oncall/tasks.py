"""Celery interface of escalation: the beat sweep."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.oncall.escalation import escalations_sweep


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def escalation_sweep() -> int:
    """Run every escalation step that is due (several workers may run it at once)."""
    return escalations_sweep()
