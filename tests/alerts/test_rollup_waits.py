"""A webhook never waits for a correlation sweep of its company: the sweep that opens an
incident adds it to its company's hourly and daily rollup buckets and holds those rows until
it commits, and the webhook's insert adds its alert to the same hour's buckets. Measured by
`make bench` before the buckets were kept as one row per writer: webhooks waited for sweeps
(PostgreSQL's lock-wait log) and the p99 at half the webhook rate doubled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alertwhisperer.celery import app
from apps.alerts.models import Alert
from apps.incidents.models import Incident
from apps.kpis.models import DailyRollup, HourlyRollup
from tests.alerts.conftest import generic
from tests.incidents.factories import AlertFactory
from tests.incidents.held_sweep import sweep_held_open

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_webhook_does_not_wait_for_an_open_sweep_of_its_company(tenant):
    # The webhook queues its company's correlation for the worker (none runs here), as in
    # production, rather than correlating in-process behind the open sweep's company lock.
    app.conf.task_always_eager = False
    at = (timezone.now() - timedelta(hours=2)).replace(minute=30, second=0, microsecond=0)
    AlertFactory(company=tenant.company, event_time=at, correlated_at=None, asset_name="db-1")
    try:
        with sweep_held_open(tenant.company.pk) as swept:
            # The sweep opened an incident in the alert's hour and has not committed yet.
            assert len(swept.became_visible) == 1
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
            response = tenant.post(generic(asset_name="web-1", timestamp=at.isoformat()))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        app.control.purge()
    assert response.status_code == 202, response.content
    assert Alert.objects.filter(company=tenant.company).count() == 2
    assert Incident.objects.filter(company=tenant.company).count() == 1
    # Readers sum a bucket's rows: two alerts and one incident in that hour and that day.
    for model, bucket in (
        (HourlyRollup, {"hour": at.replace(minute=0)}),
        (DailyRollup, {"day": at.date()}),
    ):
        rows = model.objects.filter(company=tenant.company, **bucket)
        assert sum(r.alerts_high + r.alerts_critical for r in rows) == 2
        assert sum(r.incidents_opened for r in rows) == 1
