"""Reads about the platform itself: the worker heartbeat, the correlation lag, readiness.
Nothing here is per company: ``/readyz`` and ``/metrics`` answer without authentication."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import QuerySet, Subquery

from apps.alerts.models import Alert
from apps.incidents.choices import OPEN_STATUSES
from apps.incidents.models import Incident
from apps.oncall import selectors as oncall
from apps.ops.models import Heartbeat

logger = logging.getLogger(__name__)

WORKER = "worker"


def heartbeat_age(*, now: datetime) -> float | None:
    """Seconds since the worker's last heartbeat; None if it never beat."""
    beat_at = Heartbeat.objects.filter(name=WORKER).values_list("beat_at", flat=True).first()
    return None if beat_at is None else max(0.0, (now - beat_at).total_seconds())


def correlation_lag(*, now: datetime) -> float | None:
    """Seconds since the oldest alert waiting for correlation was received; None if none
    waits. A quarantined alert does not wait: it is set aside until an admin releases it.

    One query. The oldest is the lowest id (ids follow insertion), found through the
    partial index of uncorrelated alerts, whose size is the backlog, not the table."""
    oldest = (
        Alert.objects.filter(correlated_at__isnull=True, quarantined_at__isnull=True)
        .order_by("id")
        .values("id")[:1]
    )
    received_at = (
        Alert.objects.filter(pk=Subquery(oldest)).values_list("received_at", flat=True).first()
    )
    return None if received_at is None else max(0.0, (now - received_at).total_seconds())


@dataclass(frozen=True)
class SetAside:
    """Rows the platform could not process: how many, the first few ids, an error."""

    count: int
    ids: list[int]
    error: str  # of the first of them


def _set_aside(rows: QuerySet, id_field: str, error_field: str, shown: int) -> SetAside:
    first = list(rows.values_list(id_field, error_field)[:shown])
    return SetAside(
        count=len(first) if len(first) < shown else rows.count(),
        ids=[pk for pk, _ in first],
        error=first[0][1] if first else "",
    )


def failing_escalations(*, shown: int = 5) -> SetAside:
    """The failing escalations (``apps.oncall.selectors.failing_escalations``), by
    incident: nobody is paged about their incidents until they run again."""
    failing = oncall.failing_escalations().order_by("incident_id")
    return _set_aside(failing, "incident_id", "last_error", shown)


def quarantined_alerts(*, shown: int = 5) -> SetAside:
    """The quarantined alerts, oldest first: correlation failed on each alone, so they
    open no incident until an admin releases them. Read through the partial index of
    quarantined alerts (one probe per month's partition)."""
    quarantined = Alert.objects.filter(quarantined_at__isnull=False)
    return _set_aside(quarantined.order_by("quarantined_at", "id"), "id", "quarantine_error", shown)


def platform_open_signatures(*, company_id: int) -> set[str]:
    """Signatures of the platform company's open incidents (one per watched condition)."""
    return set(
        Incident.objects.filter(company_id=company_id, status__in=OPEN_STATUSES).values_list(
            "signature", flat=True
        )
    )


@lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    # Short timeouts: a probe must answer before the prober gives up on it.
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.warning("Readiness: the database is unreachable", exc_info=True)
        return {"ok": False, "error": "unreachable"}
    return {"ok": True}


def _redis() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"ok": True, "mode": "embedded"}
    try:
        _redis_client(settings.REDIS_URL).ping()
    except redis.RedisError:
        logger.warning("Readiness: Redis is unreachable", exc_info=True)
        return {"ok": False, "error": "unreachable"}
    return {"ok": True}


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def readiness(*, now: datetime) -> dict[str, Any]:
    """Every check with its figures, and the names of those that failed. The worker and
    correlation checks read the database, so they fail with it."""
    checks: dict[str, dict[str, Any]] = {"database": _database(), "redis": _redis()}
    max_age, max_lag = settings.OPS_HEARTBEAT_MAX_AGE, settings.OPS_CORRELATION_LAG_MAX
    if checks["database"]["ok"]:
        age, lag = heartbeat_age(now=now), correlation_lag(now=now)
        checks["worker"] = {
            "ok": age is not None and age <= max_age,
            "heartbeat_age_seconds": _seconds(age),
            "max_age_seconds": max_age,
        }
        checks["correlation"] = {
            "ok": (lag or 0.0) <= max_lag,
            "lag_seconds": _seconds(lag or 0.0),
            "max_lag_seconds": max_lag,
        }
    else:
        for name in ("worker", "correlation"):
            checks[name] = {"ok": False, "error": "database unreachable"}
    failed = [name for name, check in checks.items() if not check["ok"]]
    return {"status": "unready" if failed else "ready", "failed": failed, "checks": checks}
