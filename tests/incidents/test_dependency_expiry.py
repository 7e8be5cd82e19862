"""Dependencies derived from alert labels expire once their asset has been quiet for the
configured time (a day by default); dependencies made by hand, by the API or by an import
never do, and a derived one comes back with its asset's next labelled alert."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.services import alerts_ingest
from apps.incidents import tasks
from apps.incidents.correlation import correlate_company
from apps.incidents.dependencies import (
    dependencies_expire_derived,
    dependencies_replace,
    dependency_add,
)
from apps.tenants.models import Asset, AssetDependency

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def pod_alert(asset: str, at, deployment: str = "payments") -> NormalizedAlert:
    return NormalizedAlert(
        asset_name=asset,
        signature="KubePodCrashLooping",
        severity="high",
        message=f"crash looping on {asset}",
        tool_source="Prometheus",
        status="firing",
        fingerprint=f"{asset}/crash/{at.isoformat()}",
        event_time=at,
        labels={"deployment": deployment, "namespace": "prod"},
        raw={},
    )


def deliver(company, *alerts: NormalizedAlert) -> None:
    alerts_ingest(
        company=company,
        alerts=list(alerts),
        source="alertmanager",
        delivery_id="",
        received_at=timezone.now(),
    )
    correlate_company(company_id=company.pk)


def edges(company) -> set[tuple[str, str, str]]:
    return set(
        AssetDependency.objects.filter(company=company).values_list(
            "asset__name", "depends_on__name", "source"
        )
    )


def created_days_ago(days: float) -> None:
    AssetDependency.objects.update(created_at=timezone.now() - timedelta(days=days))


def test_quiet_derived_dependencies_expire_and_hand_made_ones_stay(
    company_a, company_b, settings, django_assert_max_num_queries
):
    now = timezone.now()
    for company in (company_a, company_b):
        dependencies_replace(
            company=company, graph={"app-01": ["db-01"]}, actor=None, source="import"
        )
        dependency_add(
            asset=Asset.objects.create(company=company, name="pod-manual"),
            depends_on="payments",
            actor=None,
        )
    # Company A: payments-1 crashed two days ago only; payments-2 also an hour ago.
    deliver(
        company_a, pod_alert("payments-1", now - 2 * DAY), pod_alert("payments-2", now - 2 * DAY)
    )
    deliver(company_a, pod_alert("payments-2", now - timedelta(hours=1)))
    # Company B, the same names: its payments-1 crashed an hour ago.
    deliver(company_b, pod_alert("payments-1", now - timedelta(hours=1)))
    created_days_ago(2)
    assert ("payments-1", "payments", "labels") in edges(company_a)
    before_b = edges(company_b)
    assets = Asset.objects.count()

    settings.DERIVED_DEPENDENCY_IDLE_SECONDS = DAY.total_seconds()
    with django_assert_max_num_queries(1):
        assert tasks.expire_derived_dependencies() == 1

    assert edges(company_a) == {
        ("app-01", "db-01", "import"),
        ("pod-manual", "payments", "manual"),
        ("payments-2", "payments", "labels"),
    }
    assert edges(company_b) == before_b
    assert Asset.objects.count() == assets  # the pods' assets keep their alerts' history

    # Its next labelled alert derives it again.
    deliver(company_a, pod_alert("payments-1", now))
    assert ("payments-1", "payments", "labels") in edges(company_a)


def test_the_idle_time_is_configurable_and_a_fresh_edge_from_a_buffered_alert_stays(company_a):
    now = timezone.now()
    deliver(company_a, pod_alert("payments-1", now - 3 * DAY))
    # Derived just now from an alert three days old (a buffered agent): not idle yet.
    assert dependencies_expire_derived(now=now, idle=DAY) == 0
    created_days_ago(0.5)
    assert dependencies_expire_derived(now=now, idle=2 * DAY) == 0
    assert dependencies_expire_derived(now=now, idle=timedelta(hours=6)) == 1
    assert not AssetDependency.objects.exists()


def test_the_expiry_runs_hourly_on_the_periodic_queue(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["expire-derived-dependencies"]
    assert entry == {
        "task": "apps.incidents.tasks.expire_derived_dependencies",
        "schedule": 3600.0,
    }
    assert not any(
        entry["task"].startswith(pattern.rstrip("*")) for pattern in settings.CELERY_TASK_ROUTES
    )
    assert settings.CELERY_TASK_DEFAULT_QUEUE == "periodic"
