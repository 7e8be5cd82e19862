"""bench_seed empties tables: it refuses any database whose name lacks "bench", and any
size that cannot make a consistent data set, before touching anything."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.alerts.models import Alert

pytestmark = pytest.mark.django_db


def test_refuses_a_database_without_bench_in_its_name(company_a):
    Alert.objects.create(
        company=company_a,
        asset_name="web-1",
        signature="disk_full",
        severity="high",
        tool_source="prometheus",
        source="generic",
        status="firing",
        fingerprint="f",
        event_time="2025-03-01T00:00:00Z",
        received_at="2025-03-01T00:00:00Z",
    )
    with pytest.raises(CommandError, match="name contains 'bench'"):
        call_command("bench_seed", "--alerts=10", "--incidents=2", stdout=io.StringIO())
    assert Alert.objects.count() == 1


def test_refuses_fewer_alerts_than_incidents(settings):
    # A new dict, so the fixture puts the real one back (mutating it would leak the name).
    default = {**settings.DATABASES["default"], "NAME": "x_bench"}
    settings.DATABASES = {**settings.DATABASES, "default": default}
    with pytest.raises(CommandError, match="--alerts ≥ --incidents"):
        call_command("bench_seed", "--alerts=1", "--incidents=2", stdout=io.StringIO())
