"""Reads about incidents: who may take them, and their timeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.expressions import Expression
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.accounts.roles import Role
from apps.alerts.models import Alert
from apps.common.db import is_postgresql
from apps.incidents.choices import OPEN_STATUSES, EventKind, IncidentStatus
from apps.incidents.filters import (
    ALERT_SEARCH_PERIOD,
    DEFAULT_SORT,
    SINCE,
    SORTS,
    IncidentFilters,
)
from apps.incidents.models import Incident, IncidentEvent, IncidentText


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


ASSIGNEE_ROLES = (Role.TECHNICIAN.value, Role.COMPANY_ADMIN.value)

# Who the on-call schedules of a higher app (apps.oncall) put on call: called with
# ``company_ids`` and ``at``, it answers the user ids on call in each of those companies that
# has a schedule. Companies without one fall back to the memberships' on-call flag.
OnCallProvider = Callable[..., dict[int, list[int]]]
_on_call_providers: list[OnCallProvider] = []


def register_on_call_provider(provider: OnCallProvider) -> None:
    if provider not in _on_call_providers:
        _on_call_providers.append(provider)


def scheduled_on_call(*, company_ids: Iterable[int], at: datetime) -> dict[int, list[int]]:
    """The user ids the registered schedules put on call at ``at``, for each of these
    companies that has a schedule."""
    company_ids = list(company_ids)
    scheduled: dict[int, list[int]] = {}
    for provider in _on_call_providers:
        scheduled.update(provider(company_ids=company_ids, at=at))
    return scheduled


def _flagged(company_ids: Iterable[int]) -> Q:
    """Who is on call in companies without a schedule: active technicians with the flag."""
    return Q(
        company_id__in=list(company_ids),
        on_call=True,
        user__groups__name=Role.TECHNICIAN.value,
    )


def _named(scheduled: dict[int, list[int]]) -> Q:
    """The people a schedule puts on call, while they are technicians or company admins of
    that company (a schedule never reaches past its company)."""
    match = Q(pk__in=[])
    for company_id, user_ids in scheduled.items():
        match |= Q(company_id=company_id, user_id__in=user_ids)
    return match & Q(user__groups__name__in=ASSIGNEE_ROLES)


def _on_call(company_ids: list[int], scheduled: dict[int, list[int]]) -> QuerySet[Membership]:
    unscheduled = [c for c in company_ids if c not in scheduled]
    return Membership.objects.filter(
        _named(scheduled) | _flagged(unscheduled), user__is_active=True
    )


def on_call_technicians(
    *,
    company_ids: Iterable[int],
    at: datetime | None = None,
    scheduled: dict[int, list[int]] | None = None,
) -> dict[int, list[User]]:
    """Each company's on-call people at ``at`` (now): those its schedule names, else its
    active technicians with the on-call flag; each with ``open_incidents`` (how many open
    incidents they hold, in any company). ``scheduled``: ``scheduled_on_call`` already read.
    One query for all the companies, besides the schedules."""
    company_ids = list(company_ids)
    if scheduled is None:
        scheduled = scheduled_on_call(company_ids=company_ids, at=at or timezone.now())
    technicians: dict[int, list[User]] = {}
    seen: set[tuple[int, int]] = set()
    for membership in (
        _on_call(company_ids, scheduled)
        .select_related("user")
        .annotate(open_incidents=open_incident_count("user_id"))
        .order_by("company_id", "user_id")
    ):
        if (membership.company_id, membership.user_id) in seen:
            continue
        seen.add((membership.company_id, membership.user_id))
        membership.user.open_incidents = membership.open_incidents
        technicians.setdefault(membership.company_id, []).append(membership.user)
    return technicians


def companies_on_call(
    *,
    company_ids: Iterable[int],
    at: datetime | None = None,
    scheduled: dict[int, list[int]] | None = None,
) -> set[int]:
    """Which of these companies have someone on call: one query for a sweep's companies
    (besides the schedules), so the ones without (most, in a storm) cost nothing more."""
    company_ids = list(company_ids)
    if scheduled is None:
        scheduled = scheduled_on_call(company_ids=company_ids, at=at or timezone.now())
    return set(
        _on_call(company_ids, scheduled).order_by().values_list("company_id", flat=True).distinct()
    )


TIMELINE_EVENTS = 100
TIMELINE_ALERTS = 50


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


# --- The Incidents page ----------------------------------------------------------------------


def _text_search(query: str, *, company_ids: list[int], alerts_since: datetime) -> Q:
    """Incidents whose number, title, host or signature match ``query``, or one of whose
    alerts since ``alerts_since`` matches it by message, tool or labels: case-insensitive
    substring, the same on PostgreSQL and SQLite.

    On PostgreSQL the incident's text is read from its copy in ``IncidentText``, whose
    columns each have a trigram GIN index on their UPPER() (apps/incidents/search_text.py):
    any age, an index scan. The alerts' text has no index (it would cost every stored alert
    as much again, docs/decisions.md, "Search indexes: incidents only"), so it is read from
    the viewer's companies' alerts of the period only, through their (company, event time)
    index and the months' partitions: at ten million alerts, all of them took seconds.
    The matches are one set (a UNION) that the incidents are read by: as two ``OR``-ed
    sets, a search matching nothing walked every incident to test it (10 s at 2 M)."""
    alerts = (
        Alert.objects.filter(company_id__in=company_ids, event_time__gte=alerts_since)
        .annotate(labels_text=Cast("labels", TextField()))
        .filter(
            Q(message__icontains=query)
            | Q(tool_source__icontains=query)
            | Q(labels_text__icontains=query)
        )
        .values("incident_id")
        .order_by()
    )
    text = (
        Q(title__icontains=query) | Q(asset_name__icontains=query) | Q(signature__icontains=query)
    )
    if is_postgresql(Incident):
        incidents = IncidentText.objects.filter(text).values("incident_id")
    else:
        incidents = Incident.objects.filter(text).values("pk")
    # Without the models' default orders: SQLite refuses ORDER BY inside a UNION.
    incidents = incidents.order_by()
    number = query.removeprefix("#")
    if number.isdigit():
        incidents = incidents.union(Incident.objects.filter(pk=int(number)).values("pk").order_by())
    return Q(pk__in=incidents.union(alerts))


def incident_search(
    *, company_ids: list[int], filters: IncidentFilters, user: User, now: datetime | None = None
) -> QuerySet[Incident]:
    """Shown incidents of ``company_ids`` (already scoped by the caller) that match
    ``filters``, in the filters' order."""
    incidents = Incident.objects.filter(company_id__in=company_ids, visible=True).select_related(
        "company", "assigned_to"
    )
    if filters.status == "open":
        incidents = incidents.filter(status__in=OPEN_STATUSES)
    elif filters.status in ("acknowledged", "unacknowledged"):
        incidents = incidents.filter(
            status__in=OPEN_STATUSES, acknowledged_at__isnull=filters.status == "unacknowledged"
        )
    elif filters.status in IncidentStatus.values:
        incidents = incidents.filter(status=filters.status)
    if filters.severity:
        incidents = incidents.filter(severity=filters.severity)
    if filters.company:
        incidents = incidents.filter(company__slug=filters.company)
    if filters.assignee == "mine":
        incidents = incidents.filter(assigned_to=user)
    elif filters.assignee == "unassigned":
        incidents = incidents.filter(assigned_to__isnull=True)
    if filters.tool:
        tool_alerts = Alert.objects.filter(
            incident_id=OuterRef("pk"), tool_source__iexact=filters.tool
        )
        incidents = incidents.filter(Exists(tool_alerts))
    if filters.since in SINCE:
        incidents = incidents.filter(
            last_alert_at__gte=(now or timezone.now()) - SINCE[filters.since]
        )
    if filters.q:
        period = SINCE.get(filters.since, SINCE[ALERT_SEARCH_PERIOD])
        incidents = incidents.filter(
            _text_search(
                filters.q,
                company_ids=company_ids,
                alerts_since=(now or timezone.now()) - period,
            )
        )
    if filters.snoozed != "show":
        # Snoozes are rows of apps.silences, reached through their relation name only.
        snoozed = Incident.objects.filter(
            snoozes__ended_at__isnull=True, snoozes__until__gt=now or timezone.now()
        ).values("pk")
        if filters.snoozed == "only":
            incidents = incidents.filter(pk__in=snoozed)
        else:
            incidents = incidents.exclude(pk__in=snoozed)
    return incidents.order_by(*SORTS.get(filters.sort, SORTS[DEFAULT_SORT]))


def bulk_assignees(*, company_ids: list[int]) -> QuerySet[User]:
    """Who incidents of ``company_ids`` may be assigned to in bulk: the active technicians
    and company admins of any of them (the service checks each incident's company)."""
    return (
        User.objects.filter(
            is_active=True,
            memberships__company_id__in=company_ids,
            groups__name__in=ASSIGNEE_ROLES,
        )
        .distinct()
        .order_by("full_name", "email")
    )


@dataclass(frozen=True, slots=True)
class AlertRun:
    """Alerts next to each other on the timeline, folded into one line."""

    alerts: list[Alert]

    kind = "alerts"

    @property
    def tools(self) -> list[str]:
        return sorted({alert.tool_source for alert in self.alerts})

    @property
    def first_at(self) -> datetime:
        return min(alert.event_time for alert in self.alerts)

    @property
    def last_at(self) -> datetime:
        return max(alert.event_time for alert in self.alerts)


def timeline_folded(timeline: Timeline) -> list[TimelineEntry | AlertRun]:
    """The timeline with people's actions as they are and each run of alerts between two
    of them folded into one ``AlertRun`` (the page shows "+18 alerts from …")."""
    folded: list[TimelineEntry | AlertRun] = []
    for entry in timeline.entries:
        if entry.alert is None:
            folded.append(entry)
        elif folded and isinstance(folded[-1], AlertRun):
            folded[-1].alerts.append(entry.alert)
        else:
            folded.append(AlertRun(alerts=[entry.alert]))
    return folded
