"""Merging and splitting incidents by hand, from the incident page.

A person's decision stands: both incidents come out ``grouped_by_hand``, and correlation
never merges two such incidents again (a later merge or split by hand undoes it). Each
action takes the company row first, as a sweep does, so no sweep rewrites the incidents
meanwhile; it is audited and written on the timelines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.alerts.choices import SEVERITY_RANK, AlertStatus
from apps.alerts.models import Alert
from apps.audit.services import record
from apps.common.errors import ValidationError
from apps.incidents import grouping
from apps.incidents.choices import EventKind, IncidentStatus, Resolution
from apps.incidents.correlation import ALERT_FIELDS, SweepAlert, aggregation_key, coalesce
from apps.incidents.models import CorrelationReason, Incident, IncidentEvent, IncidentKey
from apps.incidents.scoring import priority_score
from apps.notifications.live import company_changed
from apps.tenants.models import Company

BULK_MERGE = "merge"
MERGE_BY_HAND = "incident_merged_by_hand"
SPLIT_BY_HAND = "incident_split_by_hand"


def _lock(company_id: int, incident_ids: Iterable[int]) -> dict[int, Incident]:
    Company.objects.select_for_update(no_key=True).filter(pk=company_id).get()
    return {
        i.pk: i
        for i in Incident.objects.select_related("company", "asset")
        .select_for_update(of=("self",))
        .filter(pk__in=list(incident_ids), company_id=company_id)
    }


def _check_open(incident: Incident) -> None:
    if not incident.is_open or incident.merged_into_id:
        raise ValidationError(f"Incident #{incident.pk} is closed: reopen it first.")


def _recount(incident: Incident) -> None:
    """Counts, times, severity, tools and score from the incident's firing alerts."""
    firing = Alert.objects.filter(incident=incident, status=AlertStatus.FIRING)
    totals = firing.aggregate(
        count=Count("id"),
        open=Count("id", filter=Q(resolved_at__isnull=True)),
        first=Min("event_time"),
        last=Max("event_time"),
    )
    incident.alert_count = totals["count"]
    incident.open_alert_count = totals["open"]
    incident.first_alert_at = totals["first"] or incident.first_alert_at
    incident.last_alert_at = totals["last"] or incident.last_alert_at
    severities = set(firing.values_list("severity", flat=True).distinct())
    if severities:
        incident.severity = max(severities, key=lambda s: SEVERITY_RANK[s])
    incident.tool_sources = sorted(set(firing.values_list("tool_source", flat=True).distinct()))
    incident.visible = incident.visible or incident.alert_count >= incident.company.min_alerts
    incident.priority_score = priority_score(
        severity=incident.severity,
        asset_critical=bool(incident.asset and incident.asset.is_critical),
        alert_count=incident.alert_count,
        tool_count=len(incident.tool_sources),
        first_alert_at=incident.first_alert_at,
        now=timezone.now(),
    )


def _rebuild_keys(incident: Incident) -> None:
    """The incident's link keys from its firing alerts, as correlation would write them."""
    company = incident.company
    graph = grouping.load_graphs([company.pk]).get(company.pk, grouping.EMPTY_GRAPH)
    window = timedelta(minutes=company.correlation_window_minutes)
    spans: dict[str, list[list[datetime]]] = defaultdict(list)
    for row in Alert.objects.filter(incident=incident, status=AlertStatus.FIRING).values_list(
        *ALERT_FIELDS
    ):
        alert = SweepAlert(*row)
        labels = alert.labels if isinstance(alert.labels, dict) else {}
        links = grouping.links(
            company=company,
            key=aggregation_key(company, alert),
            alert=alert,
            labels=labels,
            graph=graph,
        )
        for key in links.published:
            spans[key].append([alert.event_time, alert.event_time])
    IncidentKey.objects.filter(incident=incident).delete()
    IncidentKey.objects.bulk_create(
        IncidentKey(
            company=company, incident=incident, key=key, first_alert_at=first, last_alert_at=last
        )
        for key, segments in spans.items()
        for first, last in coalesce(segments, grouping.window_of(key, window))
    )


SAVED_FIELDS = [
    "alert_count",
    "open_alert_count",
    "first_alert_at",
    "last_alert_at",
    "severity",
    "tool_sources",
    "visible",
    "priority_score",
    "grouped_by_hand",
    "updated_at",
]


@transaction.atomic
def incident_merge(*, incident: Incident, into_id: int, actor: User) -> Incident:
    """Merge ``incident`` into incident ``into_id`` of the same company: its alerts,
    timeline, reasons and link keys move; it stays as a record pointing at the other."""
    if into_id == incident.pk:
        raise ValidationError("An incident cannot be merged into itself.")
    locked = _lock(incident.company_id, [incident.pk, into_id])
    if into_id not in locked:
        raise ValidationError(f"There is no incident #{into_id} in {incident.company.name}.")
    gone, kept = locked[incident.pk], locked[into_id]
    _check_open(gone)
    _check_open(kept)
    Alert.objects.filter(incident=gone).update(incident=kept)
    IncidentEvent.objects.filter(incident=gone).update(incident=kept)
    CorrelationReason.objects.filter(incident=gone).update(incident=kept)
    IncidentKey.objects.filter(incident=gone).update(incident=kept)
    _recount(kept)
    kept.grouped_by_hand = True
    kept.assigned_to_id = kept.assigned_to_id or gone.assigned_to_id
    if kept.acknowledged_at is None and gone.acknowledged_at is not None:
        kept.acknowledged_at, kept.acknowledged_by_id = (
            gone.acknowledged_at,
            gone.acknowledged_by_id,
        )
    kept.save(update_fields=[*SAVED_FIELDS, "assigned_to", "acknowledged_at", "acknowledged_by"])
    gone.status = IncidentStatus.RESOLVED
    gone.resolution = Resolution.MERGED
    gone.resolved_at = timezone.now()
    gone.resolved_by = actor
    gone.accepting = False
    gone.visible = False
    gone.merged_into = kept
    gone.alert_count = gone.open_alert_count = 0
    gone.save(
        update_fields=[
            "status",
            "resolution",
            "resolved_at",
            "resolved_by",
            "accepting",
            "visible",
            "merged_into",
            "alert_count",
            "open_alert_count",
            "updated_at",
        ]
    )
    details = {"merged": gone.pk, "into": kept.pk, "automatic": False}
    IncidentEvent.objects.create(
        incident=kept,
        kind=EventKind.MERGED,
        actor=actor,
        text=f"Incident #{gone.pk} ({gone.title}) merged into this one by hand.",
        details=details,
    )
    record(action=MERGE_BY_HAND, actor=actor, company=kept.company, target=kept, details=details)
    company_changed(kept.company_id)
    return kept


@transaction.atomic
def incident_split(*, incident: Incident, alert_ids: Iterable[int], actor: User) -> Incident:
    """Move the alerts of the incident that share asset and signature with ``alert_ids``
    into a new incident; both keep their link keys, rebuilt from their alerts."""
    source = _lock(incident.company_id, [incident.pk])[incident.pk]
    _check_open(source)
    chosen = set(
        Alert.objects.filter(incident=source, pk__in=list(alert_ids)).values_list(
            "asset_name", "signature"
        )
    )
    if not chosen:
        raise ValidationError("Choose the alerts to split out.")
    condition = Q()
    for asset_name, signature in chosen:
        condition |= Q(asset_name=asset_name, signature=signature)
    moving = Alert.objects.filter(condition, incident=source)
    if (
        not Alert.objects.filter(incident=source, status=AlertStatus.FIRING)
        .exclude(condition)
        .exists()
    ):
        raise ValidationError("Splitting out every alert would leave the incident empty.")
    first = moving.filter(status=AlertStatus.FIRING).order_by("event_time", "id").first()
    if first is None:
        raise ValidationError(
            "The chosen alerts are resolutions only: choose firing alerts to split out."
        )
    new = Incident.objects.create(
        company=source.company,
        key=aggregation_key(source.company, first),
        title=f"{first.signature} on {first.asset_name}"[:600],
        asset=first.asset,
        asset_name=first.asset_name,
        signature=first.signature,
        severity=first.severity,
        status=source.status,
        first_alert_at=first.event_time,
        last_alert_at=first.event_time,
        in_maintenance=source.in_maintenance,
        assigned_to=source.assigned_to,
        grouped_by_hand=True,
    )
    moved = moving.update(incident=new)
    CorrelationReason.objects.filter(incident=source, alert__incident=new).update(incident=new)
    for target in (source, new):
        _recount(target)
        target.grouped_by_hand = True
        target.save(update_fields=SAVED_FIELDS)
        _rebuild_keys(target)
    details = {"from": source.pk, "into": new.pk, "alerts": moved, "automatic": False}
    parts = ", ".join(f"{signature} on {asset}" for asset, signature in sorted(chosen))
    IncidentEvent.objects.bulk_create(
        [
            IncidentEvent(
                incident=source,
                kind=EventKind.SPLIT,
                actor=actor,
                text=f"{moved} alerts ({parts}) split out into incident #{new.pk}.",
                details=details,
            ),
            IncidentEvent(
                incident=new,
                kind=EventKind.SPLIT,
                actor=actor,
                text=f"Split out of incident #{source.pk} by hand.",
                details=details,
            ),
        ]
    )
    record(action=SPLIT_BY_HAND, actor=actor, company=source.company, target=new, details=details)
    company_changed(source.company_id)
    return new


def incidents_merge_many(
    *, incident_ids: Iterable[int], into_id: int, actor: User
) -> tuple[list[int], dict[int, str]]:
    """Merge each of ``incident_ids`` (one company's, checked by the caller) into incident
    ``into_id``, one ``incident_merge`` each (audited, on both timelines). One that cannot
    be merged (closed meanwhile) is skipped with the reason, the others still merge.
    Returns the merged ids and the skipped ones with their reasons."""
    done: list[int] = []
    skipped: dict[int, str] = {}
    for pk in sorted(set(incident_ids) - {into_id}):
        incident = Incident.objects.select_related("company").get(pk=pk)
        try:
            incident_merge(incident=incident, into_id=into_id, actor=actor)
        except ValidationError as error:
            skipped[pk] = error.message
        else:
            done.append(pk)
    return done, skipped
