"""Heartbeats: create, delete, ping, and the sweep that notices silence.

A heartbeat that goes down stores a firing alert (source "heartbeat", asset = its name,
signature "Stopped reporting", fingerprint ``heartbeat:<id>``) through the ordinary ingest,
so correlation opens the incident ("Stopped reporting on Prometheus") and assigns it; when
pings return, a resolved alert with the same fingerprint resolves it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Max, Q

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.models import Alert
from apps.alerts.services import alerts_ingest
from apps.audit.services import record
from apps.heartbeats.models import Heartbeat, HeartbeatState
from apps.tenants.models import Company

SOURCE = "heartbeat"
SIGNATURE = "Stopped reporting"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def heartbeat_create(
    *,
    company: Company,
    name: str,
    interval: timedelta,
    grace: timedelta,
    alert_name: str = "",
    actor: object = None,
) -> Heartbeat:
    token = secrets.token_urlsafe(32)
    heartbeat = Heartbeat.objects.create(
        company=company,
        name=name,
        token=token,
        token_hash=token_hash(token),
        interval=interval,
        grace=grace,
        alert_name=alert_name,
    )
    _sync_ping_signatures(company)
    record(
        action="heartbeat_created",
        actor=actor,
        company=company,
        target=heartbeat,
        details={
            "interval_seconds": int(interval.total_seconds()),
            "grace_seconds": int(grace.total_seconds()),
            "alert_name": alert_name,
        },
    )
    return heartbeat


@transaction.atomic
def heartbeat_delete(*, heartbeat: Heartbeat, actor: object = None, now: datetime) -> None:
    """Delete it; an incident it opened is resolved (nothing is watching any more)."""
    heartbeat = Heartbeat.objects.select_for_update().select_related("company").get(pk=heartbeat.pk)
    if heartbeat.state == HeartbeatState.DOWN:
        _report(heartbeat, status="resolved", now=now, message="The heartbeat was deleted.")
    record(action="heartbeat_deleted", actor=actor, company=heartbeat.company, target=heartbeat)
    heartbeat.delete()
    _sync_ping_signatures(heartbeat.company)


def _sync_ping_signatures(company: Company) -> None:
    """Tell ingest which alert names of ``company`` are pings (Company.ping_signatures).
    Saving the company renews the cached API key lookups, so every webhook process reads
    the new names on its next request."""
    names = sorted(
        set(
            Heartbeat.objects.filter(company=company)
            .exclude(alert_name="")
            .values_list("alert_name", flat=True)
        )
    )
    if company.ping_signatures != names:
        company.ping_signatures = names
        company.save(update_fields=["ping_signatures"])


def heartbeat_ping(*, token: str, now: datetime) -> Heartbeat | None:
    """Record a ping by the heartbeat's secret token; None for an unknown token."""
    with transaction.atomic():
        heartbeat = (
            Heartbeat.objects.select_for_update()
            .select_related("company")
            .filter(token_hash=token_hash(token))
        ).first()
        if heartbeat is None:
            return None
        _seen(heartbeat, at=now, now=now)
        return heartbeat


def heartbeats_check(*, now: datetime) -> int:
    """Take alert pings (``alert_name``) in, and mark down every heartbeat past its due
    time; returns how many went down. Locked rows are skipped (a ping holds them)."""
    went_down = 0
    with transaction.atomic():
        heartbeats = list(
            Heartbeat.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("company")
            .order_by("id")
        )
        alert_pings = _alert_pings([h for h in heartbeats if h.alert_name])
        for heartbeat in heartbeats:
            seen = alert_pings.get(heartbeat.pk)
            last = heartbeat.last_ping_at
            if seen is not None and (last is None or seen > last):
                _seen(heartbeat, at=seen, now=now)
            if heartbeat.state != HeartbeatState.DOWN and heartbeat.due_at() < now:
                heartbeat.state = HeartbeatState.DOWN
                heartbeat.down_since = now
                heartbeat.save(update_fields=["state", "down_since"])
                _report(heartbeat, status="firing", now=now, message=_silence(heartbeat, now))
                went_down += 1
    return went_down


def _alert_pings(heartbeats: list[Heartbeat]) -> dict[int, datetime]:
    """For heartbeats fed by alerts: when an alert of that name last arrived (a repeat of
    the stored one moves its ``last_seen_at``). One query for all of them, on the open
    alerts' partial index; none when no heartbeat is fed by alerts."""
    wanted = sorted({(h.company_id, h.alert_name) for h in heartbeats})
    if not wanted:
        return {}
    last = {
        (company_id, signature): at
        for company_id, signature, at in Alert.objects.filter(
            reduce(or_, (Q(company_id=c, signature=s) for c, s in wanted)),
            status="firing",
            resolved_at__isnull=True,
        )
        .exclude(source=SOURCE)
        .order_by()
        .values("company_id", "signature")
        .annotate(last=Max("last_seen_at"))
        .values_list("company_id", "signature", "last")
    }
    return {
        h.pk: last[h.company_id, h.alert_name]
        for h in heartbeats
        if last.get((h.company_id, h.alert_name)) is not None
    }


def _seen(heartbeat: Heartbeat, *, at: datetime, now: datetime) -> None:
    heartbeat.last_ping_at = at
    fields = ["last_ping_at"]
    if heartbeat.state == HeartbeatState.DOWN:
        _report(heartbeat, status="resolved", now=now, message=f"{heartbeat.name} reports again.")
        heartbeat.down_since = None
        fields.append("down_since")
    if heartbeat.state != HeartbeatState.UP:
        heartbeat.state = HeartbeatState.UP
        fields.append("state")
    heartbeat.save(update_fields=fields)


def _silence(heartbeat: Heartbeat, now: datetime) -> str:
    if heartbeat.last_ping_at is None:
        return (
            f"{heartbeat.name} at {heartbeat.company.name} never reported since the heartbeat "
            f"was created at {heartbeat.created_at:%Y-%m-%d %H:%M} UTC."
        )
    return (
        f"{heartbeat.name} at {heartbeat.company.name} stopped reporting: the last ping was at "
        f"{heartbeat.last_ping_at:%Y-%m-%d %H:%M:%S} UTC, expected every "
        f"{_duration(heartbeat.interval)} (grace {_duration(heartbeat.grace)})."
    )


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _report(heartbeat: Heartbeat, *, status: str, now: datetime, message: str) -> None:
    """Store the heartbeat's alert: firing when it goes down, resolved when it is back."""
    down_since = heartbeat.down_since or now
    alerts_ingest(
        company=heartbeat.company,
        alerts=[
            NormalizedAlert(
                asset_name=heartbeat.name,
                signature=SIGNATURE,
                severity="high",
                message=message,
                tool_source="Heartbeat",
                status=status,
                fingerprint=f"heartbeat:{heartbeat.pk}",
                event_time=now,
                labels={"heartbeat": heartbeat.name},
                raw={"heartbeat": heartbeat.name, "down_since": down_since.isoformat()},
                occurrence=down_since.isoformat(),
            )
        ],
        source=SOURCE,
        delivery_id="",
        received_at=now,
    )
