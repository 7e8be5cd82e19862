"""The incidents' search text, kept apart from them by the database
(apps/incidents/search_text.py): it follows every way an incident is written, an update
that leaves the text alone does not touch it, no trigram index is left on the incidents
table, and the migration's copy fills what is missing while writes go on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from apps.alerts.adapters import NormalizedAlert
from apps.alerts.services import alerts_ingest
from apps.incidents import search_text
from apps.incidents.correlation import correlate_company
from apps.incidents.dependencies import dependencies_replace
from apps.incidents.models import Incident, IncidentText
from tests.incidents.factories import IncidentFactory
from tests.incidents.invariants import assert_search_text_kept

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgresql():
    assert connection.vendor == "postgresql", "make test runs on PostgreSQL"


def _deliver(company, asset: str, signature: str, seconds: int) -> None:
    alerts_ingest(
        company=company,
        alerts=[
            NormalizedAlert(
                asset_name=asset,
                signature=signature,
                severity="critical",
                message=f"{signature} on {asset}",
                tool_source="Prometheus",
                status="firing",
                fingerprint=f"{asset}/{signature}/{seconds}",
                event_time=T0 + timedelta(seconds=seconds),
                labels={},
                raw={},
            )
        ],
        source="generic",
        delivery_id="",
        received_at=T0 + timedelta(days=1),
    )
    correlate_company(company_id=company.pk)


def _version(incident_id: int) -> str:
    """The text row's transaction id: it changes whenever the row is written."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text FROM incidents_incidenttext WHERE incident_id = %s", [incident_id]
        )
        return cursor.fetchone()[0]


def test_the_text_follows_every_write_of_an_incident(company_a, company_b):
    # Opened by a sweep (one set-based insert), by hand, and by the ORM one at a time.
    _deliver(company_a, "app-01", "db_connection_error", 60)
    IncidentFactory.create_batch(2, company=company_a)
    by_hand = IncidentFactory(company=company_b, title="Printer on fire")
    assert_search_text_kept(company_a)
    assert_search_text_kept(company_b)

    # The sweep moves the incident's root upstream: its title, host and signature change.
    dependencies_replace(company=company_a, graph={"app-01": ["db-01"]}, actor=None)
    _deliver(company_a, "db-01", "mysql_down", 0)
    incident = Incident.objects.get(company=company_a, asset_name="db-01")
    assert IncidentText.objects.get(incident_id=incident.pk).signature == "mysql_down"

    by_hand.title = "Printer fixed"
    by_hand.save()
    Incident.objects.filter(company=company_a).update(signature="renamed")
    assert_search_text_kept(company_a)
    assert_search_text_kept(company_b)

    Incident.objects.filter(company=company_a).first().delete()
    assert_search_text_kept(company_a)
    company_b.delete()
    assert_search_text_kept(company_a)
    assert not IncidentText.objects.filter(incident_id=by_hand.pk).exists()


def test_a_sweep_that_grows_an_incident_leaves_its_text_alone(company_a):
    _deliver(company_a, "app-01", "db_connection_error", 60)
    incident = Incident.objects.get(company=company_a)
    before = _version(incident.pk)

    _deliver(company_a, "app-01", "db_connection_error", 90)
    incident.refresh_from_db()
    assert incident.alert_count == 2
    assert _version(incident.pk) == before
    Incident.objects.filter(pk=incident.pk).update(title=incident.title, priority_score=77)
    assert _version(incident.pk) == before


def test_no_trigram_index_is_left_on_the_incidents_table():
    """Every update of an incident that is not HOT writes each of its table's indexes: the
    trigrams belong on the text table only."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [Incident._meta.db_table, "%USING gin%"],
        )
        assert cursor.fetchall() == []


def test_the_copy_fills_what_is_missing_and_keeps_what_triggers_wrote(company_a):
    incidents = IncidentFactory.create_batch(5, company=company_a)
    IncidentText.objects.filter(incident_id__in=[i.pk for i in incidents[:4]]).delete()
    # A row a trigger wrote meanwhile (the incident renamed while the copy runs) stays.
    IncidentText.objects.filter(incident_id=incidents[4].pk).update(title="written by trigger")

    search_text.fill(batch=2)
    search_text.fill(batch=2)

    assert IncidentText.objects.get(incident_id=incidents[4].pk).title == "written by trigger"
    IncidentText.objects.filter(incident_id=incidents[4].pk).update(title=incidents[4].title)
    assert_search_text_kept(company_a)


def test_the_page_finds_an_incident_by_its_new_name(client, technician_a, company_a):
    incident = IncidentFactory(company=company_a, title="Disk full on srv-01")
    incident.title = "Backups stopped on srv-01"
    incident.save(update_fields=["title"])
    client.force_login(technician_a)

    def found(q: str) -> bool:
        body = client.get(reverse("incidents:list"), {"q": q, "status": "all"}).content
        return f'data-incident="{incident.pk}"'.encode() in body

    assert found("backups stopped")
    assert not found("disk full")
