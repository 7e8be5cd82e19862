"""Incident work: assignment, rescoring, and the status changes, assignments and notes made
on the incident page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.accounts.permissions import Action, can, msp_admins
from apps.audit.choices import AuditAction
from apps.audit.context import current_ip
from apps.audit.models import AuditLog
from apps.audit.services import record
from apps.common.db import bulk_set
from apps.common.errors import ValidationError
from apps.incidents.choices import (
    ACKNOWLEDGE_AUDIT_ACTION,
    OPEN_STATUSES,
    EventKind,
    IncidentStatus,
    Resolution,
)
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.scoring import priority_score
from apps.incidents.selectors import (
    companies_on_call,
    incident_assignees,
    on_call_technicians,
    scheduled_on_call,
)
from apps.notifications.live import company_changed
from apps.notifications.models import Kind, Level, Notification
from apps.notifications.services import notify, push_bell
from apps.silences.selectors import silenced_incidents, snoozed_now
from apps.tenants.models import Company

RESCORE_CHUNK = 1000

# Sent with ``incident_ids`` once new visible incidents have been through auto-assignment:
# apps.oncall starts their escalation (no import goes upward).
incidents_opened = Signal()
# A resolved incident reopened by hand (``incident_id``), sent once the change commits.
incident_reopened = Signal()


def incident_auto_assign(*, incident_id: int) -> User | None:
    """Give a new visible incident to an on-call technician of its company."""
    return _auto_assign(incident_ids=[incident_id]).get(incident_id)


@transaction.atomic
def _auto_assign(
    *, incident_ids: list[int], scheduled: dict[int, list[int]] | None = None
) -> dict[int, User]:
    """Give each of these incidents that is visible, open, unassigned and not in
    maintenance to its company's active, on-call technician with the fewest open incidents
    (ties: the longest-standing account), counting the ones given out here: a fixed number
    of queries for any number of incidents. Returns the assignee of each incident."""
    incidents = list(
        Incident.objects.select_for_update(of=("self",))
        .select_related("company")
        .filter(
            pk__in=incident_ids,
            visible=True,
            in_maintenance=False,
            assigned_to__isnull=True,
            status__in=OPEN_STATUSES,
        )
        .exclude(pk__in=snoozed_now())
        .order_by("pk")
    )
    # A silenced or snoozed incident is not new work for anyone (issue 13).
    silenced = silenced_incidents(incidents)
    incidents = [incident for incident in incidents if incident.pk not in silenced]
    if not incidents:
        return {}
    technicians = on_call_technicians(
        company_ids={i.company_id for i in incidents}, scheduled=scheduled
    )
    load = {user.pk: user.open_incidents for users in technicians.values() for user in users}
    assigned: dict[int, User] = {}
    for incident in incidents:
        candidates = technicians.get(incident.company_id)
        if not candidates:
            continue
        technician = min(candidates, key=lambda user: (load[user.pk], user.pk))
        load[technician.pk] += 1
        incident.assigned_to = technician
        incident.updated_at = timezone.now()
        assigned[incident.pk] = technician
    done = [incident for incident in incidents if incident.pk in assigned]
    if not done:
        return {}
    bulk_set(Incident, done, ["assigned_to", "updated_at"])
    IncidentEvent.objects.bulk_create(
        IncidentEvent(
            incident=incident,
            kind=EventKind.ASSIGNED,
            text=f"Assigned to {incident.assigned_to} (on call, fewest open incidents)",
            details={"assigned_to": incident.assigned_to_id, "automatic": True},
        )
        for incident in done
    )
    # record()'s rows, written in one statement for the whole batch.
    AuditLog.objects.bulk_create(
        AuditLog(
            action=AuditAction.INCIDENT_ASSIGNED,
            actor_repr="system",
            company=incident.company,
            company_repr=incident.company.name,
            target_type=Incident._meta.label,
            target_id=str(incident.pk),
            target_repr=str(incident)[:255],
            details={"assigned_to": incident.assigned_to.email, "automatic": True},
            source_ip=current_ip.get(),
        )
        for incident in done
    )
    _notify_assignments(done)
    return assigned


def _notify_assignments(incidents: list[Incident]) -> None:
    """``notify_assignment`` for many incidents: one insert, then one bell push per
    assignee (with its latest notification) after commit."""
    created = Notification.objects.bulk_create(
        Notification(
            user=incident.assigned_to,
            company=incident.company,
            kind=Kind.ASSIGNMENT,
            level=Level.CRITICAL if incident.severity == "critical" else Level.WARNING,
            title=f"Assigned to you: {incident.title}"[:200],
            body=f"{incident.company.name} · priority {incident.priority_score}"[:500],
            url=incident_url(incident.pk),
        )
        for incident in incidents
    )
    latest = {notification.user_id: notification for notification in created}
    transaction.on_commit(lambda: [push_bell(n) for n in latest.values()])


def notify_assignment(*, incident: Incident, assignee: User) -> None:
    notify(
        users=[assignee],
        kind=Kind.ASSIGNMENT,
        level=Level.CRITICAL if incident.severity == "critical" else Level.WARNING,
        title=f"Assigned to you: {incident.title}",
        body=f"{incident.company.name} · priority {incident.priority_score}",
        url=incident_url(incident.pk),
        company=incident.company,
    )


def incident_url(incident_id: int) -> str:
    return f"/incidents/{incident_id}/"


def incidents_announce(*, incident_ids: list[int]) -> None:
    """Tell the people of a company about its new critical incidents (not in maintenance):
    its active members and the MSP admins (read once for all the companies), except those
    on call: escalation's first step pages them about the incident with an Acknowledge
    link, their one message about it (docs/decisions.md, "One message per new incident")."""
    incidents = list(
        Incident.objects.filter(
            pk__in=incident_ids, severity="critical", in_maintenance=False
        ).select_related("company")
    )
    if not incidents:
        return
    admins = list(msp_admins())
    recipients: dict[int, dict[int, User]] = {
        incident.company_id: {user.pk: user for user in admins} for incident in incidents
    }
    for membership in Membership.objects.filter(
        company_id__in=list(recipients), user__is_active=True
    ).select_related("user"):
        recipients[membership.company_id][membership.user_id] = membership.user
    paged = {
        company_id: {user.pk for user in users}
        for company_id, users in on_call_technicians(company_ids=list(recipients)).items()
    }
    for incident in incidents:
        on_call = paged.get(incident.company_id, set())
        users = [
            user for user in recipients[incident.company_id].values() if user.pk not in on_call
        ]
        if not users:
            continue
        notify(
            users=users,
            kind=Kind.CRITICAL_ALERT,
            level=Level.CRITICAL,
            title=f"Critical: {incident.title}",
            body=f"{incident.company.name} · priority {incident.priority_score}",
            url=incident_url(incident.pk),
            company=incident.company,
            incident=incident,
        )


def incidents_auto_assign(*, incident_ids: Mapping[int, list[int]]) -> None:
    """Assign new incidents (their ids by company) together; the companies without an
    on-call technician are found in one query for all of them and skipped. Then
    ``incidents_opened`` tells the escalation of every one of them."""
    wanted = [company_id for company_id, ids in incident_ids.items() if ids]
    if not wanted:
        return
    scheduled = scheduled_on_call(company_ids=wanted, at=timezone.now())
    ids = [
        pk
        for company_id in companies_on_call(company_ids=wanted, scheduled=scheduled)
        for pk in incident_ids[company_id]
    ]
    if ids:
        _auto_assign(incident_ids=ids, scheduled=scheduled)
    opened = [pk for company_id in wanted for pk in incident_ids[company_id]]
    incidents_opened.send(sender=Incident, incident_ids=opened)


def incidents_rescore(*, now: datetime | None = None, ids: Iterable[int] | None = None) -> int:
    """Recompute the priority of open incidents (the age term decays with time); writes only
    the scores that changed. Returns how many changed."""
    now = now or timezone.now()
    queryset = Incident.objects.filter(status__in=OPEN_STATUSES).select_related("asset")
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    changed: list[Incident] = []
    count = 0
    for incident in queryset.only(
        "id",
        "severity",
        "alert_count",
        "tool_sources",
        "first_alert_at",
        "priority_score",
        "asset__is_critical",
    ).iterator(chunk_size=RESCORE_CHUNK):
        score = priority_score(
            severity=incident.severity,
            asset_critical=bool(incident.asset and incident.asset.is_critical),
            alert_count=incident.alert_count,
            tool_count=len(incident.tool_sources),
            first_alert_at=incident.first_alert_at,
            now=now,
        )
        if score != incident.priority_score:
            incident.priority_score = score
            changed.append(incident)
        if len(changed) >= RESCORE_CHUNK:
            count += _save_scores(changed)
            changed = []
    return count + _save_scores(changed)


def _save_scores(incidents: list[Incident]) -> int:
    if incidents:
        Incident.objects.bulk_update(incidents, ["priority_score"])
    return len(incidents)


# --- Work on an incident from its page -------------------------------------------------------

NOTE_MAX_LENGTH = 5000


def _lock(incident_id: int) -> Incident:
    return (
        Incident.objects.select_for_update(of=("self",))
        .select_related("company")
        .get(pk=incident_id)
    )


@transaction.atomic
def incident_status_change(
    *, incident_id: int, status: IncidentStatus | str, actor: User, note: str = ""
) -> Incident:
    """Move an incident to ``status``. Resolving needs a note and stops the incident from
    accepting alerts; reopening a resolved incident makes it in progress again (new alerts of
    its key still open a new incident)."""
    # A correlation sweep holds the company row while it rewrites the status fields of the
    # incidents it loaded; taking that row first keeps a sweep from undoing this change.
    Company.objects.select_for_update(of=("self",), no_key=True).filter(incidents=incident_id).get()
    incident = _lock(incident_id)
    status = IncidentStatus(status)
    note = note.strip()
    previous = IncidentStatus(incident.status)
    if status == previous:
        message = f"The incident is already {previous.label.lower()}."
        raise ValidationError(message, fields={"status": [message]})
    if previous == IncidentStatus.RESOLVED and status == IncidentStatus.NEW:
        message = "A resolved incident reopens as in progress."
        raise ValidationError(message, fields={"status": [message]})
    if status == IncidentStatus.RESOLVED and not note:
        message = "Say how it was resolved: a resolution note is required."
        raise ValidationError(message, fields={"note": [message]})
    _check_note_length(note, field="note")

    incident.status = status
    if status == IncidentStatus.RESOLVED:
        incident.resolution = Resolution.MANUAL
        incident.resolved_at = timezone.now()
        incident.resolved_by = actor
        incident.accepting = False
    elif previous == IncidentStatus.RESOLVED:
        incident.resolution = ""
        incident.resolved_at = None
        incident.resolved_by = None
        incident.acknowledged_at = None
        incident.acknowledged_by = None
    incident.save(
        update_fields=[
            "status",
            "resolution",
            "resolved_at",
            "resolved_by",
            "acknowledged_at",
            "acknowledged_by",
            "accepting",
            "updated_at",
        ]
    )
    IncidentEvent.objects.create(
        incident=incident,
        kind=EventKind.STATUS,
        actor=actor,
        text=note,
        details={"from": previous.value, "to": status.value},
    )
    record(
        action=AuditAction.INCIDENT_STATUS_CHANGED,
        actor=actor,
        company=incident.company,
        target=incident,
        details={"from": previous.value, "to": status.value},
    )
    company_changed(incident.company_id)
    if previous == IncidentStatus.RESOLVED:
        transaction.on_commit(
            lambda: incident_reopened.send(sender=Incident, incident_id=incident.pk), robust=True
        )
    return incident


@transaction.atomic
def incident_assign(*, incident_id: int, assignee: User, actor: User) -> Incident:
    """Assign an open incident to one of its company's technicians or admins, or to the
    actor taking it (who may then be an MSP admin). The assignee is notified unless they
    took it themselves."""
    incident = _lock(incident_id)
    if not incident.is_open:
        message = "Reopen the incident before assigning it."
        raise ValidationError(message, fields={"assignee": [message]})
    taking = assignee.pk == actor.pk
    allowed = (
        can(assignee, Action.UPDATE_INCIDENT, incident.company)
        if taking
        else incident_assignees(company_id=incident.company_id).filter(pk=assignee.pk).exists()
    )
    if not allowed:
        message = f"{assignee} cannot work on incidents of {incident.company.name}."
        raise ValidationError(message, fields={"assignee": [message]})
    if incident.assigned_to_id == assignee.pk:
        message = f"The incident is already assigned to {assignee}."
        raise ValidationError(message, fields={"assignee": [message]})

    previous = incident.assigned_to
    incident.assigned_to = assignee
    incident.save(update_fields=["assigned_to", "updated_at"])
    IncidentEvent.objects.create(
        incident=incident,
        kind=EventKind.ASSIGNED,
        actor=actor,
        text=f"{assignee} took it" if taking else f"Assigned to {assignee}",
        details={
            "assigned_to": assignee.pk,
            "previous": previous.pk if previous else None,
            "automatic": False,
        },
    )
    record(
        action=AuditAction.INCIDENT_ASSIGNED,
        actor=actor,
        company=incident.company,
        target=incident,
        details={
            "assigned_to": assignee.email,
            "previous": previous.email if previous else None,
            "automatic": False,
        },
    )
    if not taking:
        # After commit: a notification row locks its company row (foreign key), which a
        # correlation sweep may hold while it waits for this incident's row.
        transaction.on_commit(lambda: notify_assignment(incident=incident, assignee=assignee))
    company_changed(incident.company_id)
    return incident


@transaction.atomic
def incident_acknowledge(
    *,
    incident_id: int,
    actor: User | None,
    via_link: bool = False,
    integration: str = "",
    now: datetime | None = None,
) -> Incident:
    """Say someone is on it: records who and when, moves a new incident to in progress and
    stops its escalation (the escalation sweep finds it acknowledged). ``via_link``: the
    actor used a signed link from a notification instead of logging in, audited as such.
    ``integration`` (with no actor): a monitoring tool acknowledged it ("PagerDuty"),
    audited as the system. The caller has checked the actor may update the incident."""
    Company.objects.select_for_update(of=("self",), no_key=True).filter(incidents=incident_id).get()
    incident = _lock(incident_id)
    if not incident.is_open:
        message = "A resolved incident cannot be acknowledged; reopen it first."
        raise ValidationError(message, fields={"incident": [message]})
    if incident.acknowledged_at is not None:
        who = incident.acknowledged_by or "a removed user"
        message = f"The incident is already acknowledged by {who}."
        raise ValidationError(message, fields={"incident": [message]})
    previous = IncidentStatus(incident.status)
    incident.acknowledged_at = now or timezone.now()
    incident.acknowledged_by = actor
    if previous == IncidentStatus.NEW:
        incident.status = IncidentStatus.IN_PROGRESS
    incident.save(update_fields=["acknowledged_at", "acknowledged_by", "status", "updated_at"])
    if actor is None:
        how, via, text = f"by {integration} event", "integration", f"acknowledged by {integration}"
    elif via_link:
        how, via = f"via link as {actor.email}", "link"
        text = f"acknowledged via link as {actor.email}"
    else:
        how, via, text = f"by {actor}", "console", "acknowledged"
    IncidentEvent.objects.create(
        incident=incident,
        kind=EventKind.ACKNOWLEDGED,
        actor=actor,
        text=f"Acknowledged {how}",
        details={"from": previous.value, "to": incident.status, "via_link": via_link},
    )
    details = {"via": via, "text": text}
    if actor is None:
        details["integration"] = f"{integration} integration"
    record(
        action=ACKNOWLEDGE_AUDIT_ACTION,
        actor=actor,
        company=incident.company,
        target=incident,
        details=details,
    )
    company_changed(incident.company_id)
    return incident


@transaction.atomic
def incident_take(*, incident_id: int, actor: User) -> Incident:
    """Take it: assign the incident to the actor (an error when it is theirs already: they
    acknowledge it instead) and acknowledge it unless someone has."""
    Company.objects.select_for_update(of=("self",), no_key=True).filter(incidents=incident_id).get()
    incident = incident_assign(incident_id=incident_id, assignee=actor, actor=actor)
    if incident.acknowledged_at is None:
        incident = incident_acknowledge(incident_id=incident_id, actor=actor)
    return incident


@transaction.atomic
def incident_note_add(*, incident_id: int, text: str, actor: User) -> IncidentEvent:
    """Add a note to the incident's timeline (open or resolved)."""
    text = text.strip()
    if not text:
        raise ValidationError("The note is empty.", fields={"text": ["Write the note first."]})
    _check_note_length(text, field="text")
    incident = _lock(incident_id)
    event = IncidentEvent.objects.create(
        incident=incident, kind=EventKind.NOTE, actor=actor, text=text
    )
    record(
        action=AuditAction.INCIDENT_NOTE_ADDED,
        actor=actor,
        company=incident.company,
        target=incident,
        details={"event": event.pk, "length": len(text)},
    )
    company_changed(incident.company_id)
    return event


def _check_note_length(text: str, *, field: str) -> None:
    if len(text) > NOTE_MAX_LENGTH:
        message = f"Keep it under {NOTE_MAX_LENGTH} characters (this one has {len(text)})."
        raise ValidationError(message, fields={field: [message]})


BULK_TAKE = "take"
BULK_ASSIGN = "assign"
BULK_RESOLVE = "resolve"
BULK_ACKNOWLEDGE = "acknowledge"


@dataclass(frozen=True)
class BulkOutcome:
    done: list[int]
    skipped: dict[int, str]


def incidents_bulk_act(
    *,
    incident_ids: Iterable[int],
    action: str,
    actor: User,
    assignee: User | None = None,
    note: str = "",
) -> BulkOutcome:
    """Take, acknowledge, assign or resolve (with one note) each incident in turn, through the same
    services as the incident page, so each change is evented, audited and announced.
    The caller has checked the actor may update every one; an incident the service refuses
    (already resolved, already theirs) is skipped with the service's reason."""
    done: list[int] = []
    skipped: dict[int, str] = {}
    for incident_id in incident_ids:
        try:
            if action == BULK_TAKE:
                incident_take(incident_id=incident_id, actor=actor)
            elif action == BULK_ACKNOWLEDGE:
                incident_acknowledge(incident_id=incident_id, actor=actor)
            elif action == BULK_ASSIGN and assignee is not None:
                incident_assign(incident_id=incident_id, assignee=assignee, actor=actor)
            elif action == BULK_RESOLVE:
                incident_status_change(
                    incident_id=incident_id,
                    status=IncidentStatus.RESOLVED,
                    note=note,
                    actor=actor,
                )
            else:
                raise ValidationError(f"Unknown bulk action {action!r}.")
        except ValidationError as error:
            skipped[incident_id] = error.message
        else:
            done.append(incident_id)
    return BulkOutcome(done=done, skipped=skipped)
