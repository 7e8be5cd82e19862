"""Reads of silences and snoozes: which are active, which alerts and incidents they cover
(a fixed number of queries for a page of rows), and how many alerts each silence held."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Least
from django.db.models.lookups import Exact
from django.utils import timezone

from apps.alerts.models import Alert
from apps.incidents.models import Incident
from apps.silences.models import Silence, Snooze

INCIDENT_URL = re.compile(r"^/incidents/(\d+)/$")


def active_silences(*, company_ids: Iterable[int], now: datetime | None = None) -> list[Silence]:
    now = now or timezone.now()
    return list(
        Silence.objects.filter(
            company_id__in=list(company_ids),
            expired_at__isnull=True,
            starts_at__lte=now,
            ends_at__gt=now,
        )
    )


def active_snoozes(
    *, incident_ids: Iterable[int], now: datetime | None = None
) -> dict[int, Snooze]:
    now = now or timezone.now()
    snoozes = Snooze.objects.filter(
        incident_id__in=list(incident_ids), ended_at__isnull=True, until__gt=now
    ).order_by("until")
    return {snooze.incident_id: snooze for snooze in snoozes}


@dataclass(frozen=True)
class Quiet:
    """Why an incident or alert is quiet: a snooze (``until``) or a silence."""

    snooze: Snooze | None = None
    silence: Silence | None = None

    @property
    def until(self) -> datetime:
        return self.snooze.until if self.snooze else self.silence.ends_at

    @property
    def reason(self) -> str:
        return (self.snooze or self.silence).reason


def quiet_alerts(alerts: list[Alert]) -> dict[int, Quiet]:
    """The silenced alerts among ``alerts`` (one query)."""
    silences = active_silences(company_ids={a.company_id for a in alerts})
    quiet = {}
    for alert in alerts if silences else ():
        silence = next(
            (
                s
                for s in silences
                if s.matches(
                    company_id=alert.company_id,
                    asset_name=alert.asset_name,
                    signature=alert.signature,
                    labels=alert.labels or {},
                )
            ),
            None,
        )
        if silence is not None:
            quiet[alert.pk] = Quiet(silence=silence)
    return quiet


def quiet_incidents(incidents: list[Incident]) -> dict[int, Quiet]:
    """The snoozed or silenced incidents among ``incidents`` (two queries, three when a
    silence has label matchers: one of the incident's alerts must carry its labels)."""
    if not incidents:
        return {}
    quiet: dict[int, Quiet] = {
        pk: Quiet(snooze=snooze)
        for pk, snooze in active_snoozes(incident_ids=[i.pk for i in incidents]).items()
    }
    silenced = silenced_incidents([i for i in incidents if i.pk not in quiet])
    return {**quiet, **{pk: Quiet(silence=silence) for pk, silence in silenced.items()}}


def snoozed_now(now: datetime | None = None) -> QuerySet[Snooze]:
    """The ids of the incidents snoozed now, as a subquery."""
    return Snooze.objects.filter(ended_at__isnull=True, until__gt=now or timezone.now()).values(
        "incident_id"
    )


def silenced_incidents(incidents: list[Incident]) -> dict[int, Silence]:
    """The incidents among ``incidents`` that an active silence matches, with it (one
    query, two when a silence has label matchers)."""
    if not incidents:
        return {}
    silences = active_silences(company_ids={i.company_id for i in incidents})
    if not silences:
        return {}
    labels: dict[int, list[dict]] = {}
    # Label matchers are checked on the alerts, read only for the incidents whose host and
    # signature such a silence matches, each distinct label set once.
    needs_labels = [
        incident.pk
        for incident in incidents
        if any(
            s.labels
            and s.matches(
                company_id=incident.company_id,
                asset_name=incident.asset_name,
                signature=incident.signature,
                labels=s.labels,
            )
            for s in silences
        )
    ]
    if needs_labels:
        for incident_id, alert_labels in (
            Alert.objects.filter(incident_id__in=needs_labels)
            .values_list("incident_id", "labels")
            .distinct()
        ):
            labels.setdefault(incident_id, []).append(alert_labels or {})
    silenced: dict[int, Silence] = {}
    for incident in incidents:
        for silence in silences:
            if any(
                silence.matches(
                    company_id=incident.company_id,
                    asset_name=incident.asset_name,
                    signature=incident.signature,
                    labels=alert_labels,
                )
                for alert_labels in (labels.get(incident.pk) or [{}])
            ):
                silenced[incident.pk] = silence
                break
    return silenced


@dataclass
class _Batch:
    """Incidents whose quiet state is read together, on the first question about one."""

    incident_ids: frozenset[int]
    quiet: set[int] | None = None

    def is_quiet(self, incident_id: int) -> bool:
        if self.quiet is None:
            incidents = list(
                Incident.objects.filter(pk__in=self.incident_ids).only(
                    "id", "company_id", "asset_name", "signature"
                )
            )
            self.quiet = set(quiet_incidents(incidents))
        return incident_id in self.quiet


_batch: ContextVar[_Batch | None] = ContextVar("silences_batch", default=None)


@contextmanager
def quiet_checked_together(*, incident_ids: Iterable[int]) -> Iterator[None]:
    """Within this block, the suppressor answers for these incidents (a sweep's new ones)
    from one check of them all: three queries at most for the sweep, on the first
    notification, instead of three per notified incident; none when nobody is notified."""
    token = _batch.set(_Batch(frozenset(incident_ids)))
    try:
        yield
    finally:
        _batch.reset(token)


def notification_is_quiet(*, kind: str, url: str, company, **_: object) -> bool:
    """The suppressor registered with the notifications: a critical-alert notification of
    a snoozed or silenced incident is held back (the incident and its alerts are not)."""
    match = INCIDENT_URL.match(url or "")
    if kind != "critical_alert" or match is None:
        return False
    incident_id = int(match.group(1))
    batch = _batch.get()
    if batch is not None and incident_id in batch.incident_ids:
        return batch.is_quiet(incident_id)
    incident = Incident.objects.filter(pk=incident_id).first()
    return incident is not None and incident_id in quiet_incidents([incident])


def _held_alerts(*, labels: bool) -> dict:
    """The conditions on an alert held by the silence of the outer query."""
    conditions = {
        "company_id": OuterRef("company_id"),
        "received_at__gte": OuterRef("starts_at"),
        "received_at__lt": Least(
            Coalesce(OuterRef("expired_at"), OuterRef("ends_at")), OuterRef("ends_at")
        ),
    }
    if labels:
        conditions["labels__contains"] = OuterRef("labels")
    return conditions


def silence_list(
    *, company_ids: list[int], active: bool, limit: int | None = None
) -> list[Silence]:
    """The companies' active silences, or their latest ``limit`` ended ones, newest first,
    each with ``held``: the alerts received while it was active that it matches (stored and
    correlated like any other). One query on PostgreSQL; SQLite (the embedded demo) has no
    JSON containment, so there the label matchers are checked here, on the alerts the rest
    matches."""
    contains = connection.features.supports_json_field_contains
    matched = (
        Alert.objects.filter(
            Q(Exact(OuterRef("asset_name"), Value("")))
            | Q(asset_name__iexact=OuterRef("asset_name")),
            Q(Exact(OuterRef("signature"), Value(""))) | Q(signature__iexact=OuterRef("signature")),
            **_held_alerts(labels=contains),
        )
        .order_by()
        .values("company_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    now = timezone.now()
    is_active = Q(expired_at__isnull=True, starts_at__lte=now, ends_at__gt=now)
    wanted = Silence.objects.filter(is_active if active else ~is_active)
    silences = list(
        wanted.filter(company_id__in=company_ids)
        .select_related("company", "created_by")
        .annotate(held=Coalesce(Subquery(matched, output_field=IntegerField()), 0))[:limit]
    )
    for silence in silences if not contains else ():
        if silence.labels:
            silence.held = sum(
                silence.matches(
                    company_id=silence.company_id,
                    asset_name=alert.asset_name,
                    signature=alert.signature,
                    labels=alert.labels or {},
                )
                for alert in Alert.objects.filter(
                    company_id=silence.company_id,
                    received_at__gte=silence.starts_at,
                    received_at__lt=min(silence.expired_at or silence.ends_at, silence.ends_at),
                ).only("asset_name", "signature", "labels")
            )
    return silences
