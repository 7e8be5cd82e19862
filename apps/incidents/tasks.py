"""Celery tasks of correlation and scoring. Interfaces only: each calls a service."""

from __future__ import annotations

import time
from collections.abc import Mapping

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError
from django.utils import timezone

from apps.alerts.models import Alert
from apps.common.redis import get_redis
from apps.incidents.correlation import SweepResult, correlate_batch, correlate_company
from apps.incidents.services import (
    incidents_announce,
    incidents_auto_assign,
    incidents_rescore,
)
from apps.notifications.live import companies_changed
from apps.runbooks.services import autoheal_incidents

PENDING_FLAG_SECONDS = 30
PENDING_COMPANIES = "aw:correlate:pending"
DRAIN_QUEUED = "aw:correlate:drain-queued"
SPOP_BATCH = 500
# A drain gives the worker back to other tasks (runbook polling, signals) after this long.
DRAIN_SECONDS = 5
# A drain starts this long after the first delivery that finds none queued, so the
# deliveries of that moment are swept together: at most a few sweeps a second under any
# load (each sweep has a fixed cost of about fifteen queries), for a fraction of a second
# of delay.
GATHER_SECONDS = 0.2


def _pending_key(company_id: int) -> str:
    return f"aw:correlate-pending:{company_id}"


def schedule_correlation(company_id: int) -> None:
    """Have the company's stored alerts correlated soon.

    With Redis, the company joins a set of pending companies and one drain task is queued,
    GATHER_SECONDS ahead, unless one already is (one round trip): a storm across many
    companies becomes a few sweeps a second, each over every company pending so far,
    instead of a task (and its fixed cost) per delivery. In the embedded mode the company
    is swept in-process.
    """
    if not settings.REDIS_URL:
        if cache.add(_pending_key(company_id), 1, PENDING_FLAG_SECONDS):
            correlate_company_task.delay(company_id)
        return
    pipe = get_redis().pipeline(transaction=False)
    pipe.sadd(PENDING_COMPANIES, company_id)
    pipe.set(DRAIN_QUEUED, 1, nx=True, ex=PENDING_FLAG_SECONDS)
    _, queued = pipe.execute()
    if queued:
        correlate_pending.apply_async(countdown=GATHER_SECONDS)


def after_correlation(results: Mapping[int, SweepResult]) -> None:
    """What follows a committed sweep of one or more companies: notifications, the
    self-healing check, assignment and the live signal, each once for all of them."""
    visible = [pk for result in results.values() for pk in result.became_visible]
    if visible:
        incidents_announce(incident_ids=visible)
    healing = autoheal_incidents(incident_ids=visible)
    incidents_auto_assign(
        incident_ids={
            company_id: [i for i in result.became_visible if i not in healing]
            for company_id, result in results.items()
        }
    )
    companies_changed([company_id for company_id, result in results.items() if result.alerts])


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
    after_correlation({company_id: result})
    return result.alerts


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=150,
)
def correlate_pending() -> int:
    """Sweep the companies pending now (up to SPOP_BATCH), in shared batches; what follows a
    sweep (announce, assign, live signal) runs after each batch commits. Deliveries stored
    from here on queue the next drain; more companies than one drain takes, or a drain
    that reached its time budget, queue it at once. The companies of a batch that fails
    stay uncorrelated until the periodic sweep schedules them again."""
    client = get_redis()
    client.delete(DRAIN_QUEUED)
    ids = sorted(int(raw) for raw in client.spop(PENDING_COMPANIES, SPOP_BATCH) or ())
    deadline = time.monotonic() + DRAIN_SECONDS
    alerts = 0
    while ids:
        results, ids = correlate_batch(company_ids=ids)
        after_correlation(results)
        alerts += sum(result.alerts for result in results.values())
        if ids and time.monotonic() > deadline:
            # Leave the worker to other tasks; the rest stays pending for the next drain.
            client.sadd(PENDING_COMPANIES, *ids)
            break
    if client.scard(PENDING_COMPANIES) and client.set(
        DRAIN_QUEUED, 1, nx=True, ex=PENDING_FLAG_SECONDS
    ):
        correlate_pending.delay()
    return alerts


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
