"""Reads about incidents: who may take them, and their timeline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce

from apps.accounts.models import Membership, User
from apps.accounts.roles import Role
from apps.alerts.models import Alert
from apps.incidents.choices import OPEN_STATUSES, EventKind, IncidentStatus
from apps.incidents.models import Incident, IncidentEvent


def open_incident_count(user_field: str = "pk") -> Expression:
    """Annotation for a User queryset (or one whose ``user_field`` names the user): how many
    open incidents each one holds."""
    open_counts = (
        Incident.objects.filter(assigned_to=OuterRef(user_field), status__in=OPEN_STATUSES)
        .order_by()
        .values("assigned_to")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(open_counts, output_field=IntegerField()), 0)


def _on_call(company_ids: Iterable[int]) -> QuerySet[Membership]:
    """Who is on call, as memberships: active technicians with the on-call flag."""
    return Membership.objects.filter(
        company_id__in=list(company_ids),
        on_call=True,
        user__is_active=True,
        user__groups__name=Role.TECHNICIAN.value,
    )


def on_call_technicians(*, company_ids: Iterable[int]) -> dict[int, list[User]]:
    """Each company's active, on-call technicians, each with ``open_incidents`` (how many
    open incidents they hold, in any company): one query for all the companies."""
    technicians: dict[int, list[User]] = {}
    for membership in (
        _on_call(company_ids)
        .select_related("user")
        .annotate(open_incidents=open_incident_count("user_id"))
        .order_by("company_id", "user_id")
    ):
        membership.user.open_incidents = membership.open_incidents
        technicians.setdefault(membership.company_id, []).append(membership.user)
    return technicians


def companies_on_call(*, company_ids: Iterable[int]) -> set[int]:
    """Which of these companies have an on-call technician: one query for a sweep's
    companies, so the ones without (most, in a storm) cost nothing more."""
    return set(_on_call(company_ids).order_by().values_list("company_id", flat=True).distinct())


TIMELINE_EVENTS = 100
TIMELINE_ALERTS = 50
ASSIGNEE_ROLES = (Role.TECHNICIAN.value, Role.COMPANY_ADMIN.value)


def incident_assignees(*, company_id: int) -> QuerySet[User]:
    """Who the company's incidents may be assigned to: its active technicians and company
    admins, each with ``open_incidents``, the number of open incidents they already hold."""
    return (
        User.objects.filter(
            is_active=True,
            memberships__company_id=company_id,
            groups__name__in=ASSIGNEE_ROLES,
        )
        .annotate(open_incidents=open_incident_count())
        .distinct()
        .order_by("full_name", "email")
    )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an incident's timeline: an event (``kind`` is its kind) or an alert
    (``kind`` is "alert")."""

    at: datetime
    kind: str
    event: IncidentEvent | None = None
    alert: Alert | None = None

    @property
    def status_change(self) -> tuple[str, str] | None:
        """The labels of a status event's old and new status."""
        if self.event is None or self.kind != EventKind.STATUS:
            return None
        labels = dict(IncidentStatus.choices)
        details = self.event.details
        return (
            labels.get(details.get("from"), details.get("from", "?")),
            labels.get(details.get("to"), details.get("to", "?")),
        )


@dataclass(frozen=True, slots=True)
class Timeline:
    entries: list[TimelineEntry]
    more_events: bool
    more_alerts: bool


def incident_timeline(
    *, incident: Incident, event_limit: int = TIMELINE_EVENTS, alert_limit: int = TIMELINE_ALERTS
) -> Timeline:
    """The incident's latest events and latest alerts, newest first (two queries)."""
    events = list(
        incident.events.select_related("actor").order_by("-created_at", "-id")[: event_limit + 1]
    )
    alerts = list(
        Alert.objects.filter(incident_id=incident.pk)
        .order_by("-event_time", "-id")
        .only(
            "id",
            "incident_id",
            "severity",
            "status",
            "tool_source",
            "signature",
            "message",
            "event_time",
        )[: alert_limit + 1]
    )
    entries = [
        *(TimelineEntry(at=e.created_at, kind=e.kind, event=e) for e in events[:event_limit]),
        *(TimelineEntry(at=a.event_time, kind="alert", alert=a) for a in alerts[:alert_limit]),
    ]
    entries.sort(key=attrgetter("at"), reverse=True)
    return Timeline(
        entries=entries,
        more_events=len(events) > event_limit,
        more_alerts=len(alerts) > alert_limit,
    )
