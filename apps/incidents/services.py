"""Incident work: assignment, rescoring."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.incidents.choices import OPEN_STATUSES, EventKind
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.scoring import priority_score
from apps.notifications.models import Kind, Level
from apps.notifications.services import notify

RESCORE_CHUNK = 1000


def on_call_technician(*, company_id: int) -> User | None:
    """The company's active, on-call technician with the fewest open incidents (ties: the
    longest-standing account first)."""
    open_counts = (
        Incident.objects.filter(assigned_to=OuterRef("pk"), status__in=OPEN_STATUSES)
        .order_by()
        .values("assigned_to")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        User.objects.filter(
            is_active=True,
            groups__name=Role.TECHNICIAN.value,
            memberships__company_id=company_id,
            memberships__on_call=True,
        )
        .annotate(open_incidents=Coalesce(Subquery(open_counts, output_field=IntegerField()), 0))
        .order_by("open_incidents", "pk")
        .first()
    )


@transaction.atomic
def incident_auto_assign(*, incident_id: int) -> User | None:
    """Give a new visible incident to an on-call technician of its company."""
    incident = (
        Incident.objects.select_for_update()
        .select_related("company")
        .filter(
            pk=incident_id,
            visible=True,
            in_maintenance=False,
            assigned_to__isnull=True,
            status__in=OPEN_STATUSES,
        )
        .first()
    )
    if incident is None:
        return None
    technician = on_call_technician(company_id=incident.company_id)
    if technician is None:
        return None
    incident.assigned_to = technician
    incident.save(update_fields=["assigned_to", "updated_at"])
    IncidentEvent.objects.create(
        incident=incident,
        kind=EventKind.ASSIGNED,
        text=f"Assigned to {technician} (on call, fewest open incidents)",
        details={"assigned_to": technician.pk, "automatic": True},
    )
    record(
        action=AuditAction.INCIDENT_ASSIGNED,
        company=incident.company,
        target=incident,
        details={"assigned_to": technician.email, "automatic": True},
    )
    notify_assignment(incident=incident, assignee=technician)
    return technician


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
    its members and the MSP admins."""
    incidents = Incident.objects.filter(
        pk__in=incident_ids, severity="critical", in_maintenance=False
    ).select_related("company")
    for incident in incidents:
        users = (
            User.objects.filter(is_active=True)
            .filter(
                Q(memberships__company_id=incident.company_id)
                | Q(groups__name=Role.MSP_ADMIN.value)
            )
            .distinct()
        )
        notify(
            users=users,
            kind=Kind.CRITICAL_ALERT,
            level=Level.CRITICAL,
            title=f"Critical: {incident.title}",
            body=f"{incident.company.name} · priority {incident.priority_score}",
            url=incident_url(incident.pk),
            company=incident.company,
        )


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
