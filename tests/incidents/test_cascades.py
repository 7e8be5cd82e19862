"""Cascades through the dependency graph, and how the incident page explains them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.services import alerts_ingest
from apps.audit.models import AuditLog
from apps.incidents.correlation import correlate_company
from apps.incidents.dependencies import dependencies_replace
from apps.incidents.models import Incident, IncidentEvent
from apps.tenants.models import AssetDependency

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
GRAPH = {"app-01": ["db-01"], "app-02": ["db-01"], "app-03": ["db-01"], "lb-01": ["app-01"]}


def alert(asset, signature, seconds, severity="critical", **changes) -> NormalizedAlert:
    values = {
        "asset_name": asset,
        "signature": signature,
        "severity": severity,
        "message": f"{signature} on {asset}",
        "tool_source": "Prometheus",
        "status": "firing",
        "fingerprint": f"{asset}/{signature}",
        "event_time": T0 + timedelta(seconds=seconds),
        "labels": {},
        "raw": {},
    }
    values.update(changes)
    return NormalizedAlert(**values)


def deliver(company, *alerts):
    alerts_ingest(
        company=company,
        alerts=list(alerts),
        source="generic",
        delivery_id="",
        received_at=T0 + timedelta(days=1),
    )
    correlate_company(company_id=company.pk)


def test_symptoms_first_then_the_root_make_one_incident_rooted_upstream(company_a, company_b):
    for company in (company_a, company_b):
        dependencies_replace(company=company, graph=GRAPH, actor=None)
    deliver(company_a, alert("app-01", "db_connection_error", 60, "high"))
    deliver(company_a, alert("lb-01", "upstream_5xx", 120))
    deliver(company_a, alert("app-03", "db_connection_error", 90, "high"))
    deliver(company_b, alert("app-02", "db_connection_error", 60, "high"))  # same names
    assert Incident.objects.filter(company=company_a, merged_into__isnull=True).count() == 2

    deliver(
        company_a,
        alert("db-01", "mysql_down", 0),
        alert("app-03", "certificate_expiring", 30, "low"),
    )

    live = Incident.objects.filter(company=company_a, merged_into__isnull=True)
    cascade = live.get(signature="mysql_down")
    assert (cascade.asset_name, cascade.title, cascade.alert_count) == (
        "db-01",
        "mysql_down on db-01",
        4,
    )
    assert live.get(signature="certificate_expiring").alert_count == 1  # a bystander
    merged = Incident.objects.get(company=company_a, merged_into=cascade)
    assert (merged.status, merged.resolution, merged.visible) == ("resolved", "merged", False)
    assert IncidentEvent.objects.filter(incident=cascade, kind="merged").count() == 1
    log = AuditLog.objects.get(action="incident_merged")
    assert (log.company, log.details["merged"], log.details["into"]) == (
        company_a,
        merged.pk,
        cascade.pk,
    )
    assert Incident.objects.filter(company=company_b).count() == 1  # never across companies


def test_the_incident_page_explains_each_join(client, technician_a, company_a):
    dependencies_replace(company=company_a, graph=GRAPH, actor=None)
    deliver(company_a, alert("db-01", "mysql_down", 0))
    deliver(
        company_a,
        alert("app-03", "db_connection_error", 90, "high"),
        alert("app-01", "db_connection_error", 95, "high"),
    )
    incident = Incident.objects.get(company=company_a)
    client.force_login(technician_a)
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "Why these alerts" in page
    assert "2 dependent services affected: app-01, app-03" in page
    assert (
        "app-03 depends on db-01; its db_connection_error began 90 s after db-01&#x27;s mysql_down."
        in page
    )


def test_an_alert_long_after_the_outage_is_a_new_incident(company_a):
    dependencies_replace(company=company_a, graph=GRAPH, actor=None)
    deliver(
        company_a,
        alert("db-01", "mysql_down", 0),
        alert("app-01", "db_connection_error", 30, "high"),
    )
    deliver(company_a, alert("app-01", "db_connection_error", 3 * 3600, "high"))
    assert Incident.objects.filter(company=company_a).count() == 2


def test_labels_state_dependencies_and_a_failing_deployment_roots_its_pods(company_a):
    labels = {"deployment": "payments", "namespace": "prod"}
    deliver(
        company_a,
        *(
            alert(f"payments-{n}", "KubePodCrashLooping", 30 + n, "high", labels=labels)
            for n in range(3)
        ),
    )
    edges = AssetDependency.objects.filter(company=company_a)
    assert set(edges.values_list("asset__name", "depends_on__name", "source")) == {
        (f"payments-{n}", "payments", "labels") for n in range(3)
    }
    deliver(company_a, alert("payments", "KubeDeploymentReplicasMismatch", 0, "critical"))
    incident = Incident.objects.get(merged_into__isnull=True)
    assert (incident.asset_name, incident.alert_count) == ("payments", 4)
    deliver(company_a, alert("payments-9", "KubePodCrashLooping", 60, "high", labels=labels))
    assert edges.count() == 4  # the known ones are not written again


def test_a_late_root_keeps_the_first_assignee_and_their_acknowledgement(
    company_a, technician_a, company_admin_a
):
    """The oldest symptom's person keeps the cascade; an unowned survivor takes over the
    absorbed incident's person and acknowledgement, never drops them."""
    dependencies_replace(company=company_a, graph=GRAPH, actor=None)
    deliver(company_a, alert("app-01", "db_connection_error", 60, "high"))
    deliver(company_a, alert("app-02", "db_connection_error", 70, "high"))
    first, second = Incident.objects.filter(company=company_a).order_by("first_alert_at")
    acked_at = T0 + timedelta(days=1, minutes=5)
    Incident.objects.filter(pk=second.pk).update(
        assigned_to=company_admin_a, acknowledged_at=acked_at, acknowledged_by=company_admin_a
    )

    deliver(company_a, alert("db-01", "mysql_down", 0))

    cascade = Incident.objects.get(company=company_a, merged_into__isnull=True)
    assert cascade.pk == first.pk and cascade.signature == "mysql_down"
    assert (cascade.assigned_to, cascade.acknowledged_by) == (company_admin_a, company_admin_a)
    assert cascade.acknowledged_at == acked_at

    Incident.objects.filter(pk=cascade.pk).update(assigned_to=technician_a)
    deliver(company_a, alert("app-03", "db_connection_error", 80, "high"))
    cascade.refresh_from_db()
    assert cascade.assigned_to == technician_a and cascade.alert_count == 4
