"""Celery tasks of correlation and scoring, which call the services, and the Redis
bookkeeping that queues the drains (pending sets and flags per shard), which lives here
because it queues these tasks."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta

import kombu.exceptions
import redis
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError
from django.utils import timezone

from apps.alerts.models import Alert
from apps.common.redis import get_redis
from apps.incidents.correlation import SweepResult, correlate_batch, correlate_company
from apps.incidents.dependencies import dependencies_expire_derived
from apps.incidents.services import (
    incidents_announce,
    incidents_auto_assign,
    incidents_rescore,
)
from apps.notifications.live import companies_changed
from apps.runbooks.services import autoheal_incidents
from apps.silences.selectors import quiet_checked_together

logger = logging.getLogger(__name__)

PENDING_FLAG_SECONDS = 30
SPOP_BATCH = 500
# A drain gives its worker process back (to the other shard's drain, runbook polling,
# signals) after this long, and queues its successor if work is left.
DRAIN_SECONDS = 2
# After a failed drain (the database away, say), the next one waits this long.
RETRY_SECONDS = 5
# A drain starts this long after the first delivery that finds none queued, so the
# deliveries of that moment are swept together: a few sweeps a second per shard at most
# without a backlog (each has a fixed cost of about fifteen queries), for a third of a
# second of delay. Measured at 600 webhooks/s: 0.2 s cost twice the worker CPU per alert
# of 0.5 s; 0.5 s made bigger sweeps that lengthened the web tier's latency tail.
GATHER_SECONDS = 0.3


def _pending_key(company_id: int) -> str:
    return f"aw:correlate-pending:{company_id}"


def shard_of(company_id: int) -> int:
    """Companies are split between CORRELATION_DRAINS drains, which run side by side on
    as many worker processes; a company always goes to the same one."""
    return company_id % settings.CORRELATION_DRAINS


def pending_set(shard: int) -> str:
    return f"aw:correlate:pending:{shard}"


def _drain_flag(shard: int) -> str:
    """Set while the shard's drain is queued or running: at most one of each at a time."""
    return f"aw:correlate:drain:{shard}"


def schedule_correlation(company_id: int) -> None:
    """Have the company's stored alerts correlated soon.

    With Redis, the company joins its shard's set of pending companies and, unless that
    shard's drain is already queued or running, one is queued GATHER_SECONDS ahead (one
    round trip): a storm across many companies becomes a few sweeps a second, each over
    every company pending so far, instead of a task (and its fixed cost) per delivery. In
    the embedded mode the company is swept in-process. With Redis or the broker away this
    only logs: the alerts are stored, and the periodic sweep correlates them.
    """
    if not settings.REDIS_URL:
        if cache.add(_pending_key(company_id), 1, PENDING_FLAG_SECONDS):
            correlate_company_task.delay(company_id)
        return
    shard = shard_of(company_id)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.sadd(pending_set(shard), company_id)
        pipe.set(_drain_flag(shard), 1, nx=True, ex=PENDING_FLAG_SECONDS)
        _, queued = pipe.execute()
        if queued:
            correlate_pending.apply_async((shard,), countdown=GATHER_SECONDS)
    except (redis.RedisError, kombu.exceptions.OperationalError) as exc:
        logger.warning("Company %s is left to the periodic sweep: %r", company_id, exc)


def after_correlation(results: Mapping[int, SweepResult]) -> None:
    """What follows a committed sweep of one or more companies: notifications, the
    self-healing check, assignment and the live signal, each once for all of them."""
    visible = [pk for result in results.values() for pk in result.became_visible]
    if visible:
        with quiet_checked_together(incident_ids=visible):
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


def _popped(client: redis.Redis, pending: str) -> list[int]:
    return sorted(int(raw) for raw in client.spop(pending, SPOP_BATCH) or ())


@shared_task(soft_time_limit=120, time_limit=150)
def correlate_pending(shard: int = 0) -> int:
    """Sweep the shard's pending companies in shared batches until none has alerts left or
    the time budget is spent; while there is such a backlog, companies that become pending
    meanwhile join the next batch. What follows a sweep (announce, assign, live signal)
    runs after each batch commits.
    Then the drain lets go of its shard and looks once more, so a company added while it
    ran is never left without a drain. After a failure the companies go back to the set
    and the next drain waits RETRY_SECONDS."""
    client = get_redis()
    pending, flag = pending_set(shard), _drain_flag(shard)
    deadline = time.monotonic() + DRAIN_SECONDS
    alerts = 0
    ids: list[int] = []
    failed = True
    try:
        ids = _popped(client, pending)
        while ids:
            results, ids = correlate_batch(company_ids=ids)
            after_correlation(results)
            alerts += sum(result.alerts for result in results.values())
            if time.monotonic() > deadline:
                break
            if ids:
                # A backlog: keep going, with the companies that became pending meanwhile.
                # Without one the drain ends, and the next gathers for GATHER_SECONDS.
                ids = sorted({*ids, *_popped(client, pending)})
        failed = False
    finally:
        if ids:
            client.sadd(pending, *ids)
        client.delete(flag)
        if client.scard(pending) and client.set(flag, 1, nx=True, ex=PENDING_FLAG_SECONDS):
            wait = RETRY_SECONDS if failed else 0 if ids else GATHER_SECONDS
            correlate_pending.apply_async((shard,), countdown=wait)
    return alerts


@shared_task(soft_time_limit=50, time_limit=60)
def correlation_sweep() -> int:
    """Catch alerts that no on-commit task correlated (a worker died, a broker hiccup): every
    stored alert is always correlated or quarantined."""
    companies = (
        Alert.objects.filter(correlated_at__isnull=True, quarantined_at__isnull=True)
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


@shared_task(soft_time_limit=240, time_limit=300)
def expire_derived_dependencies() -> int:
    """Beat, hourly: label-derived dependencies of assets quiet for
    DERIVED_DEPENDENCY_IDLE_SECONDS go (docs/decisions.md, issue 10 second round)."""
    return dependencies_expire_derived(
        now=timezone.now(), idle=timedelta(seconds=settings.DERIVED_DEPENDENCY_IDLE_SECONDS)
    )
