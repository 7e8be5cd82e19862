"""Property: the partition of a company's alerts into incidents depends only on the alerts,
never on the order they arrive in nor on how deliveries fall into sweeps and batches.

Each example stores one set of firing alerts (several assets, signatures, a deployment
label, a dependency graph, severities that do and do not make symptoms) twice: into a
reference company in one delivery and one sweep, and into a second company in a random
arrival order cut into random deliveries, each swept with a random batch size. Both
companies must end with the same partition, and no alert may be lost or doubled.
"""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.models import Alert
from apps.alerts.services import alerts_ingest
from apps.incidents.correlation import correlate_company
from apps.incidents.dependencies import dependencies_replace
from apps.incidents.models import Incident
from tests.factories import CompanyFactory
from tests.incidents.invariants import (
    assert_open_counts_kept,
    assert_search_text_kept,
    assert_times_span_firing_alerts,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ASSETS = ["db-01", "app-01", "app-02", "lb-01", "pod-a", "pod-b", "pod-c", "cert-host"]
GRAPH = {"app-01": ["db-01"], "app-02": ["db-01"], "lb-01": ["app-01", "app-02"]}
SIGNATURES = ["down", "errors", "crash"]

alerts_strategy = st.lists(
    st.tuples(
        st.sampled_from(ASSETS),
        st.sampled_from(SIGNATURES),
        st.sampled_from(["critical", "high", "low"]),
        st.integers(min_value=0, max_value=60),  # minutes after T0
        st.booleans(),  # carries deployment=payments
    ),
    min_size=1,
    max_size=25,
)


def normalized(number: int, spec: tuple) -> NormalizedAlert:
    asset, signature, severity, minute, labelled = spec
    return NormalizedAlert(
        asset_name=asset,
        signature=signature,
        severity=severity,
        message=f"alert {number}",
        tool_source="Prometheus",
        status="firing",
        fingerprint=f"fp-{number}",
        event_time=T0 + timedelta(minutes=minute),
        labels={"deployment": "payments"} if labelled else {},
        raw={},
    )


def store(company, alerts: list[NormalizedAlert]) -> None:
    alerts_ingest(
        company=company,
        alerts=alerts,
        source="generic",
        delivery_id="",
        received_at=T0 + timedelta(days=1),
    )


def partition(company) -> set[frozenset[str]]:
    alerts = Alert.objects.filter(company=company)
    assert not alerts.filter(incident__isnull=True).exists()
    groups: dict[int, set[str]] = {}
    for incident_id, message in alerts.values_list("incident_id", "message"):
        groups.setdefault(incident_id, set()).add(message)
    live = Incident.objects.filter(company=company, merged_into__isnull=True)
    assert set(groups) == set(live.values_list("pk", flat=True))
    for incident in live:
        assert incident.alert_count == len(groups[incident.pk])
    assert_times_span_firing_alerts(company)
    assert_open_counts_kept(company)
    assert_search_text_kept(company)
    return {frozenset(messages) for messages in groups.values()}


def deliver_in_batches(company, order: list, data: st.DataObject) -> None:
    """Store ``order`` in randomly cut deliveries, each correlated in sweeps of a random
    batch size, as the drain meets them."""
    cuts = sorted(
        data.draw(st.sets(st.integers(min_value=1, max_value=len(order)), max_size=6), label="cuts")
    )
    start = 0
    for end in [*cuts, len(order)]:
        if end > start:
            store(company, order[start:end])
            batch = data.draw(st.integers(min_value=1, max_value=10), label="batch size")
            correlate_company(company_id=company.pk, batch_size=batch)
        start = end


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=alerts_strategy, data=st.data())
def test_any_arrival_order_and_batching_gives_the_same_incidents(specs, data):
    alerts = [normalized(n, spec) for n, spec in enumerate(specs)]
    reference, shuffled = CompanyFactory(), CompanyFactory()
    for company in (reference, shuffled):
        dependencies_replace(company=company, graph=GRAPH, actor=None)

    store(reference, sorted(alerts, key=lambda a: a.event_time))
    correlate_company(company_id=reference.pk)

    deliver_in_batches(shuffled, data.draw(st.permutations(alerts), label="arrival order"), data)

    assert partition(shuffled) == partition(reference)
    assert sum(len(group) for group in partition(shuffled)) == len(alerts)
