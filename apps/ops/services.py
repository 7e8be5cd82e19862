"""The platform watching itself.

The worker proves it is alive by running the ``heartbeat`` task that beat schedules
(``heartbeat_record``). The watchdog (``watchdog_run``) runs in the beat process on a timer
(``apps.ops.receivers``), not on the worker, so it still runs when the worker is dead or
buried under a backlog. It checks four conditions, each reported the way every incident
in the product is made: as an alert of a company, here the internal platform company.

- the worker's heartbeat is older than ``OPS_HEARTBEAT_MAX_AGE`` seconds (or never came);
- the oldest uncorrelated alert is older than ``OPS_CORRELATION_LAG_MAX`` seconds;
- an incident's escalation is failing (its last attempt's writes failed): nobody is paged
  about that incident until it runs again;
- an alert is quarantined (correlation failed on it alone): it opens no incident until an
  admin releases it.

A condition that starts failing is stored as a firing critical alert of the platform company
and correlated in this process (the worker may be the thing that is down); the incident it
opens is announced to the MSP admins, the only people who see that company (it has no
members). When the condition clears, a resolved alert with the same fingerprint follows and
correlation resolves the incident (resolution "source").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.choices import AlertStatus
from apps.alerts.models import Alert
from apps.alerts.services import alerts_ingest
from apps.incidents.choices import OPEN_STATUSES
from apps.incidents.correlation import correlate_company
from apps.incidents.services import incidents_announce
from apps.notifications.live import company_changed
from apps.ops.models import Heartbeat
from apps.ops.selectors import (
    WORKER,
    SetAside,
    correlation_lag,
    failing_escalations,
    heartbeat_age,
    platform_open_signatures,
    quarantined_alerts,
)
from apps.tenants.models import Company
from apps.tenants.services import company_create

logger = logging.getLogger(__name__)

PLATFORM_SLUG = "alert-whisperer-platform"
PLATFORM_NAME = "Alert Whisperer platform"
PLATFORM_SOURCE = "platform"


@dataclass(frozen=True)
class Condition:
    signature: str
    asset_name: str

    @property
    def fingerprint(self) -> str:
        return f"{PLATFORM_SOURCE}:{self.signature}"


WORKER_SILENT = Condition(signature="WorkerHeartbeatStale", asset_name="celery-worker")
CORRELATION_LAGGING = Condition(signature="CorrelationLagging", asset_name="correlation")
ESCALATIONS_FAILING = Condition(signature="EscalationsFailing", asset_name="escalation")
ALERTS_QUARANTINED = Condition(signature="AlertsQuarantined", asset_name="correlation")
CONDITIONS = (WORKER_SILENT, CORRELATION_LAGGING, ESCALATIONS_FAILING, ALERTS_QUARANTINED)


def heartbeat_record(*, now: datetime) -> None:
    if not Heartbeat.objects.filter(name=WORKER).update(beat_at=now):
        Heartbeat.objects.update_or_create(name=WORKER, defaults={"beat_at": now})


def platform_company() -> Company:
    """The internal company that holds the platform's own incidents, made on first use.
    Its API key is never shown: nothing posts to it from outside."""
    company = Company.objects.filter(slug=PLATFORM_SLUG).first()
    if company is not None:
        return company
    try:
        company, _ = company_create(company=Company(name=PLATFORM_NAME, slug=PLATFORM_SLUG))
    except IntegrityError:
        company = Company.objects.get(slug=PLATFORM_SLUG)
    return company


def failing_conditions(*, now: datetime) -> dict[Condition, str]:
    """Each failing condition with the message its alert carries."""
    failing: dict[Condition, str] = {}
    age = heartbeat_age(now=now)
    max_age = settings.OPS_HEARTBEAT_MAX_AGE
    if age is None or age > max_age:
        seen = "ever" if age is None else f"for {age:.0f} s"
        failing[WORKER_SILENT] = (
            f"No heartbeat from the Celery worker {seen} (limit {max_age:.0f} s): it is "
            "down, or stuck behind a backlog. Alerts are stored but not correlated."
        )
    lag = correlation_lag(now=now)
    max_lag = settings.OPS_CORRELATION_LAG_MAX
    if lag is not None and lag > max_lag:
        failing[CORRELATION_LAGGING] = (
            f"The oldest uncorrelated alert was received {lag:.0f} s ago (limit "
            f"{max_lag:.0f} s): correlation is falling behind."
        )
    escalations = failing_escalations()
    if escalations.count:
        failing[ESCALATIONS_FAILING] = (
            f"Escalation is failing for {escalations.count} incident(s) ({_listed(escalations)})"
            f": nobody is paged about them until it runs again. Last error: {escalations.error}"
        )
    quarantined = quarantined_alerts()
    if quarantined.count:
        failing[ALERTS_QUARANTINED] = (
            f"{quarantined.count} alert(s) quarantined ({_listed(quarantined)}): correlation "
            "fails on each alone, so they open no incident until an MSP admin releases them "
            f"(Django admin, Alerts, filter quarantined). First error: {quarantined.error}"
        )
    return failing


def _listed(rows: SetAside) -> str:
    listed = ", ".join(f"#{pk}" for pk in rows.ids)
    if more := rows.count - len(rows.ids):
        listed += f" and {more} more"
    return listed


def _alert(condition: Condition, status: AlertStatus, message: str) -> NormalizedAlert:
    return NormalizedAlert(
        asset_name=condition.asset_name,
        signature=condition.signature,
        severity="critical",
        message=message,
        tool_source=PLATFORM_NAME,
        status=status,
        fingerprint=condition.fingerprint,
        event_time=None,
        labels={},
        raw={},
    )


def watchdog_run(*, now: datetime | None = None) -> list[NormalizedAlert]:
    """Open a platform incident for each condition that started failing, resolve the one of
    each condition that cleared. Returns the alerts it reported."""
    now = now or timezone.now()
    failing = failing_conditions(now=now)
    company = platform_company()
    open_signatures = platform_open_signatures(company_id=company.pk)
    alerts = []
    refreshed = False
    for condition in CONDITIONS:
        if condition in failing and condition.signature not in open_signatures:
            logger.error("Platform watchdog: %s", failing[condition])
            alerts.append(_alert(condition, AlertStatus.FIRING, failing[condition]))
        elif condition in failing:
            refreshed |= _refresh(company, condition, failing[condition], now=now)
        elif condition not in failing and condition.signature in open_signatures:
            logger.warning("Platform watchdog: %s cleared", condition.signature)
            alerts.append(
                _alert(condition, AlertStatus.RESOLVED, f"{condition.signature} cleared.")
            )
    if alerts:
        _report(company=company, alerts=alerts, now=now)
    elif refreshed:
        company_changed(company.pk)
    return alerts


def _refresh(company: Company, condition: Condition, message: str, *, now: datetime) -> bool:
    """A condition still failing: its open platform alert takes the latest message (how
    many alerts are quarantined now, which incidents' escalations fail, since when the
    worker is silent), without a new alert or a second notice. Whether it changed."""
    return bool(
        Alert.objects.filter(
            company=company,
            fingerprint=condition.fingerprint,
            status=AlertStatus.FIRING,
            resolved_at__isnull=True,
            incident__status__in=OPEN_STATUSES,
        )
        .exclude(message=message)
        .update(message=message, last_seen_at=now)
    )


@transaction.atomic
def _report(*, company: Company, alerts: list[NormalizedAlert], now: datetime) -> None:
    """Store, correlate and announce in one transaction: the incident and its notifications
    are committed before any after-commit step that needs Redis (queueing the drain,
    pushing bells), which may be what is down."""
    alerts_ingest(
        company=company, alerts=alerts, source=PLATFORM_SOURCE, delivery_id="", received_at=now
    )
    result = correlate_company(company_id=company.pk)
    incidents_announce(incident_ids=result.became_visible)
    company_changed(company.pk)
