"""Each incident's open critical and high alerts (``open_critical``, ``open_high``), kept by
the database (apps/incidents/open_counts.py), follow every way an alert's share changes
besides correlation (which the property tests check after every example): a
re-notification changing the severity, a month of alerts dropped by retention, two
writers racing, and a recount after a load with triggers off."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from apps.alerts import partitions
from apps.alerts.adapters.base import build_alert
from apps.alerts.models import Alert
from apps.alerts.services import alerts_ingest
from apps.incidents import open_counts
from apps.incidents.correlation import correlate_company
from apps.incidents.models import Incident
from apps.tenants.choices import RetentionDays
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.alerts.test_partitions import _old_alert, _old_partition
from tests.incidents.held_sweep import sweep_held_open
from tests.incidents.invariants import assert_open_counts_kept

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    assert connection.vendor == "postgresql", "make test runs on PostgreSQL"
    company, _ = company_create(company=Company(name="Acme", slug="acme"))
    return company


def _notify(company, severity: str, *, status: str = "firing", asset: str = "srv-db-01"):
    """One Alertmanager-style notification of the same occurrence (same fingerprint and
    start), so a second one is a re-notification of the first."""
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    return alerts_ingest(
        company=company,
        alerts=[
            build_alert(
                asset_name=asset,
                signature="disk_full",
                severity=severity,
                message="Disk / is 95% full",
                tool_source="Prometheus",
                status=status,
                fingerprint=f"fp-{asset}",
                event_time=at,
                labels={},
                raw={},
                occurrence=f"{asset}-1",
            )
        ],
        source="alertmanager",
        delivery_id="",
        received_at=timezone.now(),
    )


def _counts(incident: Incident) -> tuple[int, int]:
    incident.refresh_from_db()
    return incident.open_critical, incident.open_high


def test_a_renotification_that_changes_the_severity_moves_the_count(acme):
    _notify(acme, "critical")
    _notify(acme, "high", asset="srv-db-02")
    correlate_company(company_id=acme.pk)
    incident = Incident.objects.get(asset_name="srv-db-01")
    assert _counts(incident) == (1, 0)

    assert _notify(acme, "high").repeats == 1
    assert _counts(incident) == (0, 1)
    _notify(acme, "low")
    assert _counts(incident) == (0, 0)
    _notify(acme, "critical")
    assert _counts(incident) == (1, 0)
    assert_open_counts_kept(acme)


def test_a_resolution_takes_the_alert_out_whatever_its_severity_became(acme):
    _notify(acme, "high")
    correlate_company(company_id=acme.pk)
    incident = Incident.objects.get()
    _notify(acme, "critical")
    _notify(acme, "critical", status="resolved")
    correlate_company(company_id=acme.pk)
    assert _counts(incident) == (0, 0)
    assert Alert.objects.get(status="firing").resolved_at is not None
    assert_open_counts_kept(acme)


def test_retention_takes_a_dropped_months_alerts_out_of_the_counts(acme):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    now = timezone.now()
    Company.objects.filter(pk=acme.pk).update(retention_days=RetentionDays.MONTH)
    old = _old_partition(now)
    _notify(acme, "critical")
    correlate_company(company_id=acme.pk)
    incident = Incident.objects.get()
    # An alert of four months ago still firing in the same incident.
    lasting = _old_alert(acme, old)
    Alert.objects.filter(pk=lasting.pk).update(incident=incident, correlated_at=now)
    assert _counts(incident) == (2, 0)

    assert old.name in partitions.retention_apply(now=now)

    assert _counts(incident) == (1, 0)
    assert_open_counts_kept(acme)


@pytest.mark.django_db(transaction=True)
def test_a_renotification_racing_the_sweep_that_resolves_it_leaves_the_counts_right(acme):
    """The sweep holds the incident and the alert it resolves until it commits; a
    re-notification raising that alert's severity meanwhile waits for it, then finds it
    resolved and becomes a new alert: the counts stay right."""
    _notify(acme, "high")
    correlate_company(company_id=acme.pk)
    _notify(acme, "high", status="resolved")
    with sweep_held_open(acme.pk):
        waiting = threading.Thread(target=lambda: (_notify(acme, "critical"), connection.close()))
        waiting.start()
        deadline = timezone.now() + timedelta(seconds=10)
        while not _blocked() and timezone.now() < deadline:
            threading.Event().wait(0.05)
        assert _blocked(), "the re-notification did not wait for the sweep"
    waiting.join(30)
    correlate_company(company_id=acme.pk)
    assert_open_counts_kept(acme)


def _blocked() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_recount_puts_every_incident_right(acme):
    _notify(acme, "critical")
    _notify(acme, "high", asset="srv-db-02")
    correlate_company(company_id=acme.pk)
    Incident.objects.update(open_critical=7, open_high=-3)

    open_counts.recount()

    assert_open_counts_kept(acme)
    assert sorted(Incident.objects.values_list("open_critical", "open_high")) == [(0, 1), (1, 0)]


@pytest.mark.django_db(transaction=True)
def test_a_recount_waits_for_an_incident_another_writer_holds_and_counts_it_after(acme):
    _notify(acme, "critical")
    _notify(acme, "high", asset="srv-db-02")
    correlate_company(company_id=acme.pk)
    Incident.objects.update(open_critical=7, open_high=-3)
    held = Incident.objects.get(asset_name="srv-db-01")
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT id FROM incidents_incident WHERE id = %s FOR UPDATE", [held.pk])
    thread = threading.Thread(target=lambda: (open_counts.recount(batch=1), connection.close()))
    thread.start()
    try:
        thread.join(0.5)
        assert thread.is_alive(), "the recount did not wait for the held incident"
        assert _counts(held) == (7, -3)
        assert _counts(Incident.objects.get(asset_name="srv-db-02")) == (0, 1)
    finally:
        holder.rollback()
        holder.close()
        thread.join(30)
    assert_open_counts_kept(acme)


def test_incident_pages_keep_room_for_the_counts_written_after_the_incident(acme):
    """The sweep adds the counts to incidents it wrote moments before: with a fifth of each
    page free the second version can stay on the page (a HOT update), not go into all 19
    indexes (measured in docs/decisions.md)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'incidents_incident'")
        assert cursor.fetchone()[0] == ["fillfactor=80"]
