"""Writes of silences and snoozes, each audited and announced to the company's pages."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import record
from apps.common.errors import ValidationError
from apps.incidents.choices import OPEN_STATUSES, EventKind
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import incidents_auto_assign
from apps.notifications.live import company_changed
from apps.silences.models import Silence, Snooze
from apps.tenants.models import Company

REASON_MAX = 500
# Quiet periods that ended this long ago are looked at again by each run of the beat task
# (every minute): a run missed while the worker restarted is made up by the next.
WAKE_LOOKBACK = timedelta(minutes=5)
WAKE_LIMIT = 1000


def _check_reason(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if required and not reason:
        message = "Say why: the reason is shown on every alert it silences."
        raise ValidationError(message, fields={"reason": [message]})
    if len(reason) > REASON_MAX:
        message = f"Keep the reason under {REASON_MAX} characters."
        raise ValidationError(message, fields={"reason": [message]})
    return reason


@transaction.atomic
def silence_create(
    *,
    company: Company,
    asset_name: str,
    signature: str,
    labels: dict[str, str],
    reason: str,
    ends_at: datetime,
    actor: User,
) -> Silence:
    """A silence of ``company`` until ``ends_at``. It needs at least one matcher: a whole
    company goes quiet through a maintenance window, which the company settings own."""
    reason = _check_reason(reason, required=True)
    asset_name, signature = asset_name.strip(), signature.strip()
    if not (asset_name or signature or labels):
        message = (
            "Give a host, a signature or a label: a silence of everything is a maintenance window."
        )
        raise ValidationError(message, fields={"asset_name": [message]})
    now = timezone.now()
    if ends_at <= now:
        message = "The silence must end in the future."
        raise ValidationError(message, fields={"ends_at": [message]})
    silence = Silence.objects.create(
        company=company,
        asset_name=asset_name,
        signature=signature,
        labels=labels,
        reason=reason,
        starts_at=now,
        ends_at=ends_at,
        created_by=actor,
    )
    record(
        action="silence_created",
        actor=actor,
        company=company,
        target=silence,
        details={
            "matchers": silence.matcher_text,
            "ends_at": ends_at.isoformat(),
            "reason": reason,
        },
    )
    company_changed(company.pk)
    return silence


@transaction.atomic
def silence_expire(*, silence_id: int, actor: User) -> Silence:
    silence = Silence.objects.select_for_update().select_related("company").get(pk=silence_id)
    if not silence.is_active():
        message = "This silence is no longer active."
        raise ValidationError(message)
    silence.expired_at = timezone.now()
    silence.save(update_fields=["expired_at"])
    record(
        action="silence_expired",
        actor=actor,
        company=silence.company,
        target=silence,
        details={"matchers": silence.matcher_text},
    )
    company_changed(silence.company_id)
    transaction.on_commit(quiet_ended_assign, robust=True)
    return silence


@transaction.atomic
def incident_snooze(*, incident_id: int, until: datetime, reason: str, actor: User) -> Snooze:
    """Quiet one open incident until ``until``: marked on the pages, its critical
    notifications held back; its alerts still arrive and count. On the timeline."""
    incident = (
        Incident.objects.select_for_update(of=("self",))
        .select_related("company")
        .get(pk=incident_id)
    )
    reason = _check_reason(reason, required=False)
    if not incident.is_open:
        message = "A resolved incident needs no snooze."
        raise ValidationError(message, fields={"until": [message]})
    if until <= timezone.now():
        message = "Snooze it until a time in the future."
        raise ValidationError(message, fields={"until": [message]})
    Snooze.objects.filter(incident=incident, ended_at__isnull=True).update(ended_at=timezone.now())
    snooze = Snooze.objects.create(incident=incident, until=until, reason=reason, created_by=actor)
    IncidentEvent.objects.create(
        incident=incident,
        kind=EventKind.NOTE,
        actor=actor,
        text=f"Snoozed until {until:%Y-%m-%d %H:%M} UTC" + (f": {reason}" if reason else ""),
        details={"snoozed_until": until.isoformat()},
    )
    record(
        action="incident_snoozed",
        actor=actor,
        company=incident.company,
        target=incident,
        details={"until": until.isoformat(), "reason": reason},
    )
    company_changed(incident.company_id)
    return snooze


@transaction.atomic
def incident_wake(*, incident_id: int, actor: User) -> int:
    """End the incident's snooze now; returns how many were ended (0: it was not snoozed)."""
    incident = (
        Incident.objects.select_for_update(of=("self",))
        .select_related("company")
        .get(pk=incident_id)
    )
    ended = Snooze.objects.filter(
        incident=incident, ended_at__isnull=True, until__gt=timezone.now()
    ).update(ended_at=timezone.now())
    if ended:
        IncidentEvent.objects.create(
            incident=incident, kind=EventKind.NOTE, actor=actor, text="Woken up from a snooze"
        )
        record(action="incident_woken", actor=actor, company=incident.company, target=incident)
        company_changed(incident.company_id)
        transaction.on_commit(quiet_ended_assign, robust=True)
    return ended


def quiet_ended_assign(*, now: datetime | None = None) -> int:
    """Incidents a silence or snooze kept from being assigned come back to work once it
    ends, on time or early: each open, visible, unassigned one of those snoozes, or of the
    companies of those silences, is given to whoever is on call, as a new incident is
    (and starts escalating if it never did). Incidents still quiet for another reason stay
    as they are. Safe to repeat: it looks at quiet periods that ended in the last
    ``WAKE_LOOKBACK``. Returns how many incidents were looked at."""
    now = now or timezone.now()
    since = now - WAKE_LOOKBACK
    snoozes = Snooze.objects.filter(
        Q(ended_at__range=(since, now)) | Q(ended_at__isnull=True, until__range=(since, now))
    ).values("incident_id")
    silences = Silence.objects.filter(
        Q(expired_at__range=(since, now)) | Q(expired_at__isnull=True, ends_at__range=(since, now))
    ).values("company_id")
    by_company: dict[int, list[int]] = defaultdict(list)
    for company_id, pk in Incident.objects.filter(
        Q(pk__in=snoozes) | Q(company_id__in=silences),
        visible=True,
        in_maintenance=False,
        assigned_to__isnull=True,
        status__in=OPEN_STATUSES,
    ).values_list("company_id", "pk")[:WAKE_LIMIT]:
        by_company[company_id].append(pk)
    incidents_auto_assign(incident_ids=by_company)
    return sum(len(ids) for ids in by_company.values())
