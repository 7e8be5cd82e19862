"""Races against the real database: threads with their own connections, released together."""

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client

from apps.alerts.models import Alert, Delivery
from apps.incidents.correlation import correlate_company
from apps.incidents.models import Incident
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.alerts.conftest import WEBHOOK, generic

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 8


def race(work: Callable[[int], object], n: int = THREADS) -> list:
    """Run ``work(i)`` in ``n`` threads released at the same instant; return results."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.fixture
def acme():
    assert connection.vendor == "postgresql", "make test runs on PostgreSQL"
    company, key = company_create(
        company=Company(name="Acme", slug="acme", rate_limit_per_minute=1000, rate_limit_burst=1000)
    )
    return company, key


def post(key: str, body: dict, **headers) -> tuple[int, dict]:
    response = Client().post(
        WEBHOOK,
        json.dumps(body),
        content_type="application/json",
        headers={"X-API-Key": key, **headers},
    )
    return response.status_code, response.json()


def test_racing_retries_of_one_delivery_store_one_set_of_alerts(acme):
    company, key = acme
    body = {**generic(), "fingerprint": "fp-race"}
    results = race(lambda i: post(key, body, **{"X-Delivery-ID": "same-delivery"}))
    assert {status for status, _ in results} == {202}
    ids = {tuple(r["alert_ids"]) for _, r in results}
    assert len(ids) == 1
    assert sum(not r["duplicate"] for _, r in results) == 1
    assert Alert.objects.filter(company=company).count() == 1
    assert Delivery.objects.filter(company=company).count() == 1
    assert list(Alert.objects.values_list("pk", flat=True)) == list(next(iter(ids)))


def test_concurrent_deliveries_of_one_key_make_one_open_incident(acme):
    company, key = acme

    # Each thread delivers and then sweeps, as web processes and workers would.
    def deliver_and_sweep(i: int):
        status, _ = post(key, generic(message=f"copy {i}"))
        correlate_company(company_id=company.pk)
        return status

    assert set(race(deliver_and_sweep)) == {202}
    correlate_company(company_id=company.pk)
    incident = Incident.objects.get(company=company)
    assert incident.alert_count == THREADS
    assert incident.accepting is True
    assert not Alert.objects.filter(correlated_at__isnull=True).exists()


def test_concurrent_sweeps_of_one_company_never_double_count(acme):
    company, _ = acme
    t0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    # Stored directly, so no on-commit correlation runs before the race.
    Alert.objects.bulk_create(
        Alert(
            company=company,
            asset_name="srv-db-01",
            signature="disk_full",
            severity="critical",
            tool_source="Datadog",
            source="generic",
            status="firing",
            fingerprint="fp",
            event_time=t0 + timedelta(seconds=i),
            received_at=t0,
        )
        for i in range(200)
    )
    results = race(lambda i: correlate_company(company_id=company.pk, batch_size=25).alerts, n=4)
    assert sum(results) == 200
    incident = Incident.objects.get(company=company)
    assert incident.alert_count == 200
    assert Alert.objects.filter(incident=incident).count() == 200


def test_racing_repeats_of_one_occurrence_make_one_row(acme):
    company, key = acme
    moment = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    body = {**generic(), "fingerprint": "fp-repeat", "timestamp": moment}
    results = race(lambda i: post(key, body, **{"X-Delivery-ID": f"repeat-{i}"}))
    assert {status for status, _ in results} == {202}
    assert len({tuple(r["alert_ids"]) for _, r in results}) == 1
    assert sum(r["repeats"] for _, r in results) == THREADS - 1
    alert = Alert.objects.get(company=company)
    assert alert.repeat_count == THREADS - 1
    assert sorted(alert.delivery_ids) == sorted(f"repeat-{i}" for i in range(THREADS))
