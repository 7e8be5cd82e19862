"""Merging and splitting by hand from the incident page: scoped, audited, undoable, and
never undone by correlation."""

import pytest
from django.urls import reverse

from apps.alerts.models import Alert
from apps.audit.models import AuditLog
from apps.common.errors import ValidationError
from apps.incidents.dependencies import dependencies_replace
from apps.incidents.merging import incident_split
from apps.incidents.models import Incident, IncidentEvent, IncidentKey
from tests.incidents.factories import AlertFactory, IncidentFactory
from tests.incidents.invariants import (
    assert_open_counts_kept,
    assert_search_text_kept,
    assert_times_span_firing_alerts,
)
from tests.incidents.test_cascades import alert, deliver

pytestmark = pytest.mark.django_db
GRAPH = {"app-01": ["db-01"], "app-03": ["db-01"]}


def live(company):
    return Incident.objects.filter(company=company, merged_into__isnull=True)


def test_a_technician_merges_two_incidents_and_splits_them_again(client, technician_a, company_a):
    deliver(company_a, alert("web-01", "http_5xx", 0), alert("web-02", "latency", 10))
    first, second = live(company_a).order_by("pk")
    client.force_login(technician_a)

    response = client.post(reverse("incidents:merge", args=[second.pk]), {"into": first.pk})

    assert response.status_code == 302 and response["Location"] == reverse(
        "incidents:detail", args=[first.pk]
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.alert_count, first.grouped_by_hand) == (2, True)
    assert (first.open_critical, second.open_critical) == (2, 0)
    assert (second.merged_into, second.resolution, second.visible) == (first, "merged", False)
    assert set(Alert.objects.values_list("incident", flat=True)) == {first.pk}
    assert not IncidentKey.objects.filter(incident=second).exists()
    assert (
        AuditLog.objects.filter(action="incident_merged_by_hand", actor=technician_a).count() == 1
    )
    assert IncidentEvent.objects.filter(incident=first, kind="merged").exists()
    assert_times_span_firing_alerts(company_a)
    assert_open_counts_kept(company_a)
    assert_search_text_kept(company_a)

    latency = Alert.objects.get(signature="latency")
    response = client.post(reverse("incidents:split", args=[first.pk]), {"alerts": [latency.pk]})

    split = Incident.objects.get(signature="latency", merged_into__isnull=True)
    assert response["Location"] == reverse("incidents:detail", args=[split.pk])
    first.refresh_from_db()
    assert (first.alert_count, split.alert_count) == (1, 1)
    assert (first.open_critical, split.open_critical) == (1, 1)
    assert split.grouped_by_hand and first.grouped_by_hand
    assert AuditLog.objects.filter(action="incident_split_by_hand").count() == 1
    assert IncidentKey.objects.filter(incident=split, key="k:web-02|latency").exists()
    assert_times_span_firing_alerts(company_a)
    assert_open_counts_kept(company_a)
    assert_search_text_kept(company_a)


def test_merging_by_hand_keeps_the_absorbed_acknowledgement(client, technician_a, company_a):
    deliver(company_a, alert("web-01", "http_5xx", 0), alert("web-02", "latency", 10))
    first, second = live(company_a).order_by("pk")
    client.force_login(technician_a)
    client.post(reverse("incidents:take", args=[second.pk]))

    client.post(reverse("incidents:merge", args=[second.pk]), {"into": first.pk})

    first.refresh_from_db()
    assert (first.assigned_to, first.acknowledged_by) == (technician_a, technician_a)
    assert first.acknowledged_at is not None


def test_correlation_never_undoes_a_split(client, technician_a, company_a):
    dependencies_replace(company=company_a, graph=GRAPH, actor=None)
    deliver(
        company_a,
        alert("db-01", "mysql_down", 0),
        alert("app-03", "db_connection_error", 60, "high"),
    )
    cascade = live(company_a).get()
    app = Alert.objects.get(asset_name="app-03")
    client.force_login(technician_a)
    client.post(reverse("incidents:split", args=[cascade.pk]), {"alerts": [app.pk]})
    split = live(company_a).get(signature="db_connection_error")

    # Matches the split incident by its key and the cascade through db-01: no merge.
    deliver(company_a, alert("app-03", "db_connection_error", 120, "high"))

    assert live(company_a).count() == 2
    split.refresh_from_db()
    assert split.alert_count == 2


def test_merging_is_scoped_and_checked(client, technician_a, technician_b, company_a, company_b):
    deliver(company_a, alert("web-01", "http_5xx", 0))
    deliver(company_b, alert("web-01", "http_5xx", 0))
    mine, theirs = live(company_a).get(), live(company_b).get()
    client.force_login(technician_a)

    client.post(reverse("incidents:merge", args=[mine.pk]), {"into": theirs.pk})
    assert live(company_a).count() == 1 and live(company_b).count() == 1  # refused
    assert (
        client.post(reverse("incidents:merge", args=[theirs.pk]), {"into": mine.pk}).status_code
        == 404
    )
    assert (
        client.post(reverse("incidents:split", args=[theirs.pk]), {"alerts": [1]}).status_code
        == 404
    )
    assert client.get(reverse("incidents:merge", args=[mine.pk])).status_code == 405
    client.post(reverse("incidents:merge", args=[mine.pk]), {"into": mine.pk})
    assert live(company_a).get() == mine
    assert not AuditLog.objects.filter(action__endswith="_by_hand").exists()


def test_the_card_offers_merge_and_split_to_those_who_may(client, technician_a, company_a):
    deliver(company_a, alert("web-01", "http_5xx", 0), alert("web-01", "http_5xx", 5))
    incident = live(company_a).get()
    client.force_login(technician_a)
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert reverse("incidents:merge", args=[incident.pk]) in page
    assert "Split out into a new incident" not in page  # one asset and signature only
    assert 'name="csrfmiddlewaretoken"' in page


def test_splitting_out_only_resolutions_is_refused_with_a_reason(technician_a, company_a):
    incident = IncidentFactory(company=company_a, asset_name="web-01", signature="http_5xx")
    AlertFactory(incident=incident)
    resolution = AlertFactory(
        incident=incident, asset_name="web-02", signature="latency", status="resolved"
    )
    with pytest.raises(ValidationError, match="resolutions only: choose firing alerts"):
        incident_split(incident=incident, alert_ids=[resolution.pk], actor=technician_a)
    assert live(company_a).count() == 1
