"""Invariants every path that groups alerts into incidents must keep."""

from django.db.models import Max, Min

from apps.alerts.models import Alert
from apps.incidents.models import Incident


def assert_times_span_firing_alerts(company) -> None:
    """Each live incident's first and last alert times are its firing alerts' earliest and
    latest event times: the dashboard's open counts look for an incident's active alerts
    between them only (``apps.dashboard.selectors.open_counts``)."""
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
