from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.models import Alert
from apps.ops.services import heartbeat_record
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.alerts.conftest import Tenant


@pytest.fixture
def tenant(db, client):
    company, key = company_create(company=Company(name="Acme Corp", slug="acme"))
    return Tenant(client, company, key)


@pytest.fixture
def worker_alive(db):
    heartbeat_record(now=timezone.now())


@pytest.fixture
def stored_alert():
    """An alert of ``company`` received ``age`` seconds ago and not correlated yet."""

    def store(company: Company, age: float) -> Alert:
        received_at = timezone.now() - timedelta(seconds=age)
        return Alert.objects.create(
            company=company,
            asset_name="srv-db-01",
            signature="disk_full",
            severity="critical",
            tool_source="Datadog",
            source="generic",
            status="firing",
            fingerprint="fp-1",
            event_time=received_at,
            received_at=received_at,
        )

    return store
