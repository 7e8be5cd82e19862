"""Prometheus metrics (prometheus-client).

Counters are incremented where things happen: webhook deliveries by the middleware, task
failures and notification failures by signal receivers (``apps.ops.receivers``). Gauges that
describe the platform's state (correlation lag, worker heartbeat age) are read from the
database when ``/metrics`` is scraped, so every process reports the same value.

Several processes (granian's workers, Celery's pool): with ``PROMETHEUS_MULTIPROC_DIR`` set
in the environment of every process before it starts, prometheus-client writes each
process's counters to files in that directory (made if missing) and a scrape adds them
up. Emptying it when the processes start is advised (one file per process id stays
behind); without the variable each process counts alone (the embedded mode, tests).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import datetime

from django.db import DatabaseError
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from apps.ops.selectors import correlation_lag, heartbeat_age

logger = logging.getLogger(__name__)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROC_DIR:
    # Each process's counters are files there, opened as the counters are made below.
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

WEBHOOK_DELIVERIES = Counter(
    "aw_webhook_deliveries",
    "Webhook deliveries answered, by source named in the URL and HTTP status.",
    ["source", "status"],
)
TASK_FAILURES = Counter(
    "aw_celery_task_failures", "Celery tasks that raised, by task name.", ["task"]
)
NOTIFICATION_FAILURES = Counter(
    "aw_notification_failures", "In-app notifications whose live push to the bell failed."
)


class _Families:
    """Metric families computed for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def state_families(*, now: datetime) -> list[Metric]:
    """The platform-state gauges; none when the database cannot be read (``/readyz`` says
    why)."""
    try:
        lag = correlation_lag(now=now)
        age = heartbeat_age(now=now)
    except DatabaseError:
        logger.warning("Metrics scrape: the database is unreachable", exc_info=True)
        return []
    families = [
        GaugeMetricFamily(
            "aw_correlation_lag_seconds",
            "Age of the oldest stored alert not yet correlated (0 when none waits).",
            value=lag or 0.0,
        )
    ]
    if age is not None:
        families.append(
            GaugeMetricFamily(
                "aw_worker_heartbeat_age_seconds",
                "Seconds since the Celery worker last ran the heartbeat task.",
                value=age,
            )
        )
    return families


def exposition(*, now: datetime) -> bytes:
    """The text exposition: the counters of every process, then the state gauges."""
    if MULTIPROC_DIR:
        counters = CollectorRegistry()
        MultiProcessCollector(counters, path=MULTIPROC_DIR)
    else:
        counters = REGISTRY
    state = CollectorRegistry()
    state.register(_Families(state_families(now=now)))
    return generate_latest(counters) + generate_latest(state)
