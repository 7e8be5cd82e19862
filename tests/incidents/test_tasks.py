"""The drains on a backlog (issue 15): a large backlog over many companies and keys is
correlated and assigned by the drains in full, each drain a bounded piece of work."""

import time
from datetime import timedelta

import pytest

from apps.alerts.models import Alert
from apps.common.redis import get_redis
from apps.incidents import tasks
from apps.incidents.models import Incident
from tests.factories import CompanyFactory, UserFactory
from tests.incidents.test_correlation import T0, alert, ingest

pytestmark = pytest.mark.django_db
COMPANIES = 40
ALERTS_PER_COMPANY = 300
KEYS_PER_COMPANY = 100


def test_a_backlog_of_twelve_thousand_alerts_drains_completely(settings, capsys):
    assert settings.REDIS_URL, "make test runs with Redis"
    companies = [CompanyFactory() for _ in range(COMPANIES)]
    for company in companies:
        UserFactory(role="Technician", companies=[company])
        ingest(
            company,
            *(
                alert(
                    asset_name=f"host-{i % KEYS_PER_COMPANY // 10}",
                    signature=f"check-{i % 10}",
                    event_time=T0 + timedelta(seconds=i),
                )
                for i in range(ALERTS_PER_COMPANY)
            ),
        )
        get_redis().sadd(tasks.pending_set(tasks.shard_of(company.pk)), company.pk)

    drains = []
    while any(get_redis().scard(tasks.pending_set(shard)) for shard in (0, 1)):
        for shard in (0, 1):
            started = time.monotonic()
            drains.append((tasks.correlate_pending(shard), time.monotonic() - started))

    total = COMPANIES * ALERTS_PER_COMPANY
    assert sum(alerts for alerts, _ in drains) == total
    assert not Alert.objects.filter(correlated_at__isnull=True).exists()
    assert Incident.objects.count() == COMPANIES * KEYS_PER_COMPANY
    assert not Incident.objects.filter(assigned_to__isnull=True).exists()
    with capsys.disabled():
        print(
            f"\nbacklog of {total} alerts: {len(drains)} drains, seconds each:",
            [round(seconds, 2) for _, seconds in drains],
        )
