"""Property: with resolutions in the mix, the partition of a company's alerts into
incidents and each incident's final state (open or resolved by the source, its open alert
count) depend only on the notifications, not on the order they arrive in nor on how
deliveries fall into sweeps and batches.

Each example is a set of problems, each one alert of the monitoring tool (one fingerprint):
it fires, may be resolved some minutes later, and may fire again (and be resolved again)
later. A source sends the notifications of one alert in the order they happened, so the
arrival orders drawn are the interleavings that keep each fingerprint's own order; across
fingerprints anything goes. The set is stored into a reference company in event-time order
in one sweep, and into a second company in a random interleaving cut into random
deliveries, each swept with a random batch size.
"""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.models import Alert
from apps.incidents.correlation import correlate_company
from apps.incidents.dependencies import dependencies_replace
from apps.incidents.models import Incident
from tests.factories import CompanyFactory
from tests.incidents.invariants import (
    assert_open_counts_kept,
    assert_search_text_kept,
    assert_times_span_firing_alerts,
)
from tests.incidents.test_property_correlation import GRAPH, T0, deliver_in_batches, store

pytestmark = pytest.mark.django_db
# Few assets and signatures, so that keys meet often.
ASSETS = ["db-01", "app-01", "app-02", "lb-01", "pod-a"]
SIGNATURES = ["down", "errors"]

problems_strategy = st.lists(
    st.tuples(
        st.sampled_from(ASSETS),
        st.sampled_from(SIGNATURES),
        st.sampled_from(["critical", "high", "low"]),
        st.integers(min_value=0, max_value=40),  # fires, minutes after T0
        st.booleans(),  # carries deployment=payments
        st.none() | st.integers(min_value=1, max_value=30),  # resolved this much later
        st.none() | st.integers(min_value=1, max_value=40),  # fires again this much later
        st.none() | st.integers(min_value=1, max_value=10),  # resolved again this much later
    ),
    min_size=2,
    max_size=10,
)


def notifications(number: int, spec: tuple) -> list[NormalizedAlert]:
    """One alert's notifications, in the order they happened."""
    asset, signature, severity, minute, labelled, resolved, again, resolved_again = spec
    steps = [("firing", minute)]
    if resolved is not None:
        steps.append(("resolved", minute + resolved))
        if again is not None:
            steps.append(("firing", minute + resolved + again))
            if resolved_again is not None:
                steps.append(("resolved", minute + resolved + again + resolved_again))
    return [
        NormalizedAlert(
            asset_name=asset,
            signature=signature,
            severity=severity,
            message=f"alert {number} {status} at {at}",
            tool_source="Prometheus",
            status=status,
            fingerprint=f"fp-{number}",
            event_time=T0 + timedelta(minutes=at),
            labels={"deployment": "payments"} if labelled else {},
            raw={},
        )
        for status, at in steps
    ]


def outcome(company) -> tuple[dict, dict, frozenset]:
    """Each incident (as the set of its alerts' messages) with its final state, when each
    firing alert was closed, and the resolutions that closed nothing."""
    rows = Alert.objects.filter(company=company).values_list(
        "incident_id", "message", "status", "resolved_at"
    )
    groups: dict[int, set[str]] = {}
    closed = {}
    lone = set()
    for incident_id, message, status, resolved_at in rows:
        if status == "firing":
            assert incident_id is not None, message
            closed[message] = resolved_at
        if incident_id is None:
            lone.add(message)
        else:
            groups.setdefault(incident_id, set()).add(message)
    live = {i.pk: i for i in Incident.objects.filter(company=company, merged_into__isnull=True)}
    assert set(groups) == set(live)
    states = {}
    for pk, messages in groups.items():
        incident = live[pk]
        firing = [m for m in messages if " firing " in m]
        still_open = [m for m in firing if closed[m] is None]
        assert incident.alert_count == len(firing)
        assert incident.open_alert_count == len(still_open)
        state = "open" if still_open else "resolved"
        assert (incident.status, incident.resolution) == (
            ("new", "") if still_open else ("resolved", "source")
        ), incident
        states[frozenset(messages)] = state
    assert_times_span_firing_alerts(company)
    assert_open_counts_kept(company)
    assert_search_text_kept(company)
    return states, closed, frozenset(lone)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=problems_strategy, data=st.data())
def test_resolutions_in_any_arrival_order_and_batching_give_the_same_incidents(specs, data):
    per_alert = [notifications(n, spec) for n, spec in enumerate(specs)]
    everything = [a for steps in per_alert for a in steps]
    reference, shuffled = CompanyFactory(), CompanyFactory()
    for company in (reference, shuffled):
        dependencies_replace(company=company, graph=GRAPH, actor=None)

    store(reference, sorted(everything, key=lambda a: a.event_time))
    correlate_company(company_id=reference.pk)

    # A random interleaving that keeps each alert's notifications in their own order.
    owners = data.draw(
        st.permutations([n for n, steps in enumerate(per_alert) for _ in steps]),
        label="interleaving",
    )
    queues = [list(steps) for steps in per_alert]
    deliver_in_batches(shuffled, [queues[n].pop(0) for n in owners], data)

    assert outcome(shuffled) == outcome(reference)


def delivered_one_by_one(specs: list[tuple], order: list[tuple[int, int]]) -> tuple:
    """The outcome of the notifications swept one at a time in ``order`` ((alert, step)
    pairs), and of all of them in event-time order in one sweep."""
    per_alert = [notifications(n, spec) for n, spec in enumerate(specs)]
    reference, shuffled = CompanyFactory(), CompanyFactory()
    store(reference, sorted((a for steps in per_alert for a in steps), key=lambda a: a.event_time))
    correlate_company(company_id=reference.pk)
    for number, step in order:
        store(shuffled, [per_alert[number][step]])
        correlate_company(company_id=shuffled.pk)
    return outcome(shuffled), outcome(reference)


def test_a_late_resolution_bridges_to_a_later_alert_of_its_key():
    """app-01 down fires at 0 and resolves at 5; another app-01 down alert fires at 18. In
    event order the one at 18 flaps the incident back open (13 minutes after the
    resolution). Delivered first, it must still end in that incident: the resolution,
    when it arrives, links them."""
    specs = [
        ("app-01", "down", "critical", 0, False, 5, None, None),
        ("app-01", "down", "critical", 18, False, None, None, None),
    ]
    shuffled, reference = delivered_one_by_one(specs, [(1, 0), (0, 0), (0, 1)])
    assert shuffled == reference
    assert list(reference[0].values()) == ["open"]


def test_a_flap_is_measured_from_the_incidents_notifications_not_the_last_resolution_seen():
    """Two alerts of one key resolve at 5 and 12; a third fires at 25. Whichever resolution
    arrives last, the incident's notifications reach to 12, so the one at 25 joins it."""
    specs = [
        ("app-01", "down", "critical", 10, False, 2, None, None),
        ("app-01", "down", "critical", 0, False, 5, None, None),
        ("app-01", "down", "critical", 25, False, None, None, None),
    ]
    order = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    shuffled, reference = delivered_one_by_one(specs, order)
    assert shuffled == reference
    assert list(reference[0].values()) == ["open"]
