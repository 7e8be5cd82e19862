"""Exactly once per escalation step with several workers: sweeps racing in threads (each
its own PostgreSQL connection), and a worker killed mid-step (its backend terminated while
it holds a step's uncommitted page)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from apps.notifications.models import Kind, Notification
from apps.oncall.escalation import escalations_start, escalations_sweep
from apps.oncall.models import EscalationPage
from apps.tenants.models import Company
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 2, 3, 2, 0, tzinfo=UTC)


def in_thread(target, results: list, barrier: threading.Barrier | None = None):
    def run():
        try:
            if barrier is not None:
                barrier.wait()
            results.append(target())
        except Exception as error:  # the test reads what each thread ended with
            results.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_racing_sweeps_page_every_step_exactly_once(
    company_a, technician_a, company_admin_a, msp_admin
):
    incidents = [IncidentFactory(company=company_a) for _ in range(25)]
    escalations_start(incident_ids=[i.pk for i in incidents], now=T0)
    moved = []
    for at in (0, 15, 30):
        barrier = threading.Barrier(3)
        now = T0 + timedelta(minutes=at)
        threads = [
            in_thread(lambda now=now: escalations_sweep(now=now, batch=4), moved, barrier)
            for _ in range(3)
        ]
        for thread in threads:
            thread.join(60)
    assert all(isinstance(count, int) for count in moved), moved
    assert sum(moved) == 75
    pages = Counter(EscalationPage.objects.values_list("incident_id", "step", "round"))
    assert len(pages) == 75 and set(pages.values()) == {1}
    notices = Counter(
        Notification.objects.filter(kind=Kind.ESCALATION).values_list("user__email", flat=True)
    )
    assert notices == {"tech@acme.example": 25, "ca@acme.example": 25, "msp@example.com": 25}


def _blocked_backend() -> int | None:
    """The backend waiting for a lock. Polled from inside a transaction, whose view of
    pg_stat_activity is a snapshot unless cleared."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def test_a_worker_killed_mid_step_leaves_the_step_to_the_next_sweep(company_a, technician_a):
    """Worker A writes the step's page, notifications and event, then waits at its commit
    for the company row (held here, as a long correlation sweep would: the foreign keys are
    checked at commit); worker B sweeping meanwhile skips the row A holds; A is killed; the
    next sweep pages the step, once."""
    incident = IncidentFactory(company=company_a)
    escalations_start(incident_ids=[incident.pk], now=T0)
    killed, skipped = [], []
    with transaction.atomic():
        Company.objects.select_for_update().get(pk=company_a.pk)
        worker = in_thread(lambda: escalations_sweep(now=T0), killed)
        for _ in range(600):
            pid = _blocked_backend()
            if pid:
                break
            time.sleep(0.05)
        assert pid, f"worker A never reached its commit: {killed}"
        other = in_thread(lambda: escalations_sweep(now=T0), skipped)
        other.join(30)
        assert skipped == [0]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        worker.join(30)
    assert len(killed) == 1 and isinstance(killed[0], Exception)
    assert not EscalationPage.objects.exists()
    assert not Notification.objects.exists()

    assert escalations_sweep(now=T0 + timedelta(seconds=20)) == 1
    assert list(EscalationPage.objects.values_list("step", "round")) == [(0, 0)]
    assert Notification.objects.filter(user=technician_a, kind=Kind.ESCALATION).count() == 1
