"""bench_seed empties tables: it refuses any database whose name lacks "bench", and any
size that cannot make a consistent data set, before touching anything."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.alerts.models import Alert
from apps.incidents import search_text

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


@pytest.mark.django_db(transaction=True)
def test_the_indexes_it_drops_come_back_on_every_partition(settings):
    """Its indexes are dropped for the load and made again: on the partitioned alerts table
    each must be valid and on every month's partition (made from their "ON ONLY"
    definitions, they were invalid and absent from the partitions: every page a scan)."""
    from django.db import connection

    default = {**settings.DATABASES["default"], "NAME": "x_bench"}
    settings.DATABASES = {**settings.DATABASES, "default": default}
    call_command(
        "bench_seed",
        "--companies=2",
        "--assets=2",
        "--alerts=40",
        "--incidents=4",
        "--audit=5",
        "--days=3",
        stdout=io.StringIO(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'alerts_alert'::regclass"
        )
        parents = dict(cursor.fetchall())
        cursor.execute(
            "SELECT p.relname, count(*) FROM pg_inherits h "
            "JOIN pg_class p ON p.oid = h.inhrelid "
            "JOIN pg_index i ON i.indrelid = p.oid "
            "WHERE h.inhparent = 'alerts_alert'::regclass GROUP BY p.relname"
        )
        per_partition = dict(cursor.fetchall())
    assert "alert_incident_time" in parents and all(parents.values()), parents
    assert per_partition and set(per_partition.values()) == {len(parents)}, per_partition
    # Loaded with triggers off, the incidents' search text is copied, and searchable.
    from apps.incidents.models import Incident, IncidentText

    assert IncidentText.objects.count() == Incident.objects.count() == 4
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'incidents_incidenttext' "
            "AND indexdef LIKE '%gin_trgm_ops%'"
        )
        assert cursor.fetchone()[0] == len(search_text.TRIGRAM_INDEXES)
