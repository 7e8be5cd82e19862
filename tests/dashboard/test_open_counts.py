"""The dashboard's live cards (critical and high active alerts, open incidents) from the
counts kept on the open incidents equal the direct counts: the ORM queries over the alerts
(SQLite's), and a count done in Python over the rows the test stored."""

from datetime import timedelta

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.alerts import partitions
from apps.alerts.choices import AlertStatus, Severity
from apps.dashboard import selectors
from apps.incidents.choices import OPEN_STATUSES, IncidentStatus
from tests.incidents.factories import AlertFactory, IncidentFactory

incident_rows = st.lists(
    st.tuples(
        st.integers(0, 1),  # company
        st.sampled_from(IncidentStatus.values),
        st.booleans(),  # visible
    ),
    max_size=6,
)
alert_rows = st.lists(
    st.tuples(
        st.integers(-1, 5),  # incident (-1: none, or past the last one)
        st.integers(0, 1),  # company when it has no incident
        st.sampled_from(Severity.values),
        st.sampled_from(AlertStatus.values),
        st.booleans(),  # resolved_at set
    ),
    max_size=14,
)


def _expected(companies, incidents, alerts, scope):
    in_view = {companies[i].pk for i in scope}
    shown_open = {
        incident.pk
        for incident in incidents
        if incident.company_id in in_view and incident.status in OPEN_STATUSES and incident.visible
    }
    active = [
        alert.severity
        for alert in alerts
        if alert.incident_id in shown_open
        and alert.status == AlertStatus.FIRING
        and alert.resolved_at is None
    ]
    return active.count(Severity.CRITICAL), active.count(Severity.HIGH), len(shown_open)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    incident_list=incident_rows,
    alert_list=alert_rows,
    scope=st.sampled_from([[], [0], [1], [0, 1]]),
)
def test_open_counts_equal_the_direct_counts(
    company_a, company_b, incident_list, alert_list, scope
):
    companies = [company_a, company_b]
    now = timezone.now()
    with transaction.atomic():
        incidents = [
            IncidentFactory(company=companies[company], status=status, visible=visible)
            for company, status, visible in incident_list
        ]
        alerts = []
        for incident_index, company, severity, status, resolved in alert_list:
            incident = incidents[incident_index] if 0 <= incident_index < len(incidents) else None
            extra = {} if incident else {"company": companies[company]}
            alerts.append(
                AlertFactory(
                    incident=incident,
                    severity=severity,
                    status=status,
                    resolved_at=now - timedelta(minutes=1) if resolved else None,
                    **extra,
                )
            )
        company_ids = [companies[i].pk for i in scope]

        counted = selectors.open_counts(company_ids)
        assert counted == _expected(companies, incidents, alerts, scope)
        assert counted == selectors.scan_open_counts(company_ids)
        metrics = selectors.dashboard_metrics(company_ids=company_ids, since=now)
        assert (metrics.critical_alerts, metrics.high_alerts, metrics.active_incidents) == counted
        transaction.set_rollback(True)


def test_an_open_incident_without_active_alerts_still_counts(client, msp_admin, company_a):
    """An incident with no active alert counts as open, with no alert."""
    client.force_login(msp_admin)
    quiet = IncidentFactory(company=company_a)
    AlertFactory(incident=quiet, severity="critical", status="resolved")
    IncidentFactory(company=company_a, status="in_progress")
    body = client.get(reverse("dashboard:cards")).content.decode()
    assert 'data-metric="critical">0<' in body
    assert 'data-metric="high">0<' in body
    assert 'data-metric="incidents">2<' in body


def _relations(plan: dict) -> set[str]:
    found, nodes = set(), [plan]
    while nodes:
        node = nodes.pop()
        found.add(node.get("Relation Name", ""))
        nodes.extend(node.get("Plans", []))
    return found - {""}


def test_the_open_counts_read_the_open_incidents_only(company_a):
    """The counts kept on each incident replace the probes of its alerts (about 10 µs an
    open incident, 15,000 open incidents for the bench's MSP admin): one query, on the
    incidents table alone, whatever the months the alerts span."""
    now = timezone.now()
    starts = [partitions.month_start(now)]
    for _ in range(3):
        starts.append(partitions.month_start(starts[-1] - timedelta(days=1)))
    partitions.partitions_ensure(now=now, since=starts[-1])
    day = timedelta(days=1)
    this_month = IncidentFactory(company=company_a, first_alert_at=starts[0] + day)
    AlertFactory(incident=this_month, event_time=starts[0] + day, severity=Severity.CRITICAL)
    two_months = IncidentFactory(company=company_a, first_alert_at=starts[3] + day)
    for at in (starts[3] + day, starts[2] + day):
        AlertFactory(incident=two_months, event_time=at, severity=Severity.HIGH)

    with CaptureQueriesContext(connection) as captured:
        assert selectors.open_counts([company_a.pk]) == (1, 2, 2)
    assert len(captured.captured_queries) == 1
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + captured.captured_queries[0]["sql"])
        plan = cursor.fetchone()[0][0]["Plan"]
    assert _relations(plan) == {"incidents_incident"}
