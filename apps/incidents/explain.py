"""Why an incident holds its alerts: the reasons correlation stored, for the incident page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Min

from apps.alerts.models import Alert
from apps.incidents import grouping
from apps.incidents.models import CorrelationReason, Incident

SHOWN_REASONS = 50
SHOWN_PARTS = 100


@dataclass(frozen=True)
class Part:
    """The incident's alerts of one asset and signature: what a split moves."""

    asset_name: str
    signature: str
    alerts: int
    first_alert_id: int


@dataclass(frozen=True)
class Correlation:
    incident: Incident
    dependents: list[str]
    assets: int
    reasons: list[CorrelationReason]
    more_reasons: bool
    merged: list[Incident]
    parts: list[Part]


def incident_correlation(*, incident: Incident) -> Correlation:
    """The incident's root and the dependent assets its alerts come from (by the company's
    graph today), the first reasons stored for its alerts, and the incidents merged into
    it. A few queries whatever the number of alerts."""
    parts = [
        Part(*row)
        for row in Alert.objects.filter(incident=incident)
        .values_list("asset_name", "signature")
        .annotate(alerts=Count("id"), first_alert_id=Min("id"))
        .order_by("asset_name", "signature")
    ]
    names = {part.asset_name for part in parts}
    graph = grouping.load_graphs([incident.company_id]).get(incident.company_id)
    dependents = sorted(
        name for name in names if graph is not None and incident.asset_name in graph.ancestors(name)
    )
    reasons = list(
        CorrelationReason.objects.filter(incident=incident)
        .select_related("alert")
        .order_by("alert__event_time", "id")[: SHOWN_REASONS + 1]
    )
    merged = list(Incident.objects.filter(merged_into=incident).order_by("pk"))
    return Correlation(
        incident=incident,
        dependents=dependents,
        assets=len(names),
        reasons=reasons[:SHOWN_REASONS],
        more_reasons=len(reasons) > SHOWN_REASONS,
        merged=merged,
        parts=parts[:SHOWN_PARTS],
    )
