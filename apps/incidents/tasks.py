"""Celery tasks of correlation and scoring. Interfaces only: each calls a service."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError
from django.utils import timezone

from apps.alerts.models import Alert
from apps.incidents.correlation import SweepResult, correlate_company
from apps.incidents.services import (
    incidents_announce,
    incidents_auto_assign,
    incidents_rescore,
)
from apps.notifications.live import company_changed
from apps.runbooks.services import autoheal_incidents

PENDING_FLAG_SECONDS = 30


def _pending_key(company_id: int) -> str:
    return f"aw:correlate-pending:{company_id}"


def schedule_correlation(company_id: int) -> None:
    """Queue one correlation of the company unless one is already queued: a storm of
    deliveries becomes a handful of sweeps, each taking everything stored so far."""
    if cache.add(_pending_key(company_id), 1, PENDING_FLAG_SECONDS):
        correlate_company_task.delay(company_id)


def after_correlation(company_id: int, result: SweepResult) -> None:
    """What follows a committed sweep: notifications, assignment, live signal."""
    if result.became_visible:
        incidents_announce(incident_ids=result.became_visible)
    healing = autoheal_incidents(incident_ids=result.became_visible)
    incidents_auto_assign(
        company_id=company_id,
        incident_ids=[i for i in result.became_visible if i not in healing],
    )
    if result.alerts:
        company_changed(company_id)


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=150,
)
def correlate_company_task(company_id: int) -> int:
    cache.delete(_pending_key(company_id))
    result = correlate_company(company_id=company_id)
    after_correlation(company_id, result)
    return result.alerts


@shared_task(soft_time_limit=50, time_limit=60)
def correlation_sweep() -> int:
    """Catch alerts that no on-commit task correlated (a worker died, a broker hiccup): every
    stored alert is always correlated."""
    companies = (
        Alert.objects.filter(correlated_at__isnull=True)
        .order_by()
        .values_list("company_id", flat=True)
        .distinct()
    )
    count = 0
    for company_id in companies:
        schedule_correlation(company_id)
        count += 1
    return count


@shared_task(soft_time_limit=240, time_limit=300)
def rescore_incidents() -> int:
    return incidents_rescore(now=timezone.now())
