"""Invariants every path that groups alerts into incidents must keep."""

from django.db.models import Max, Min

from apps.alerts.models import Alert
from apps.incidents import search_text
from apps.incidents.models import Incident, IncidentText


def assert_times_span_firing_alerts(company) -> None:
    """Each live incident's first and last alert times are its firing alerts' earliest and
    latest event times, as the incident page shows them and the KPIs measure from the
    first."""
    spans = {
        row["incident_id"]: (row["first"], row["last"])
        for row in Alert.objects.filter(company=company, status="firing", incident__isnull=False)
        .values("incident_id")
        .annotate(first=Min("event_time"), last=Max("event_time"))
    }
    for incident in Incident.objects.filter(company=company, merged_into__isnull=True):
        if incident.pk in spans:
            assert (incident.first_alert_at, incident.last_alert_at) == spans[incident.pk], (
                incident.pk
            )


def assert_open_counts_kept(company) -> None:
    """Each incident's open critical and high counts (kept by the database,
    apps/incidents/open_counts.py) are its firing, unresolved alerts of that severity."""
    expected: dict[int, list[int]] = {}
    for incident_id, severity in Alert.objects.filter(
        company=company,
        incident__isnull=False,
        status="firing",
        resolved_at__isnull=True,
        severity__in=("critical", "high"),
    ).values_list("incident_id", "severity"):
        counts = expected.setdefault(incident_id, [0, 0])
        counts[severity == "high"] += 1
    kept = {
        pk: [critical, high]
        for pk, critical, high in Incident.objects.filter(company=company).values_list(
            "pk", "open_critical", "open_high"
        )
        if critical or high
    }
    assert kept == expected


def assert_search_text_kept(company) -> None:
    """Each incident's search text (kept by the database on PostgreSQL,
    apps/incidents/search_text.py) is its title, host and signature, and no other row is
    left."""
    incidents = Incident.objects.filter(company=company)
    expected = {row[0]: row for row in incidents.values_list("pk", *search_text.COLUMNS)}
    kept = {
        row[0]: row
        for row in IncidentText.objects.filter(incident_id__in=incidents.values("pk")).values_list(
            "incident_id", *search_text.COLUMNS
        )
    }
    assert kept == expected
    assert not IncidentText.objects.exclude(incident_id__in=Incident.objects.values("pk")).exists()
