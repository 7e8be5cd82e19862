"""The set-based writes of apps.common.db (PostgreSQL): what they store equals what the ORM
stores, whether a column's values differ from row to row or are all the same (sent as one
parameter), and the ``__any`` lookup finds what ``__in`` finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.db.models import Q
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.common.db import bulk_insert, bulk_set, planner, unsaved
from apps.incidents.models import Incident, IncidentKey
from apps.tenants.models import Asset, Company

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 11, 1, tzinfo=UTC)
KEYS = st.sampled_from(["k:a", "k:b", "b:x=1", "at:db-01", ""])
TIMES = st.integers(0, 3).map(lambda minutes: BASE + timedelta(minutes=minutes))
ROWS = st.lists(st.tuples(KEYS, TIMES, TIMES), min_size=1, max_size=12)


def _unsaved(company_id: int, key: str, tool_sources: list[str]) -> Incident:
    return Incident(
        company_id=company_id,
        key=key,
        title="t",
        asset_name="a",
        signature="b",
        severity="high",
        first_alert_at=BASE,
        last_alert_at=BASE,
        tool_sources=tool_sources,
    )


@pytest.fixture
def incident():
    company = Company.objects.create(name="Acme", slug="acme")
    incident = _unsaved(company.pk, "a|b", ["Prometheus"])
    incident.save()
    return incident


def _stored(incident: Incident) -> list[tuple]:
    return sorted(
        IncidentKey.objects.filter(incident=incident).values_list(
            "company_id", "incident_id", "key", "first_alert_at", "last_alert_at"
        )
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS, updates=ROWS)
def test_plain_rows_insert_and_update_as_the_orm_does(incident, rows, updates):
    with transaction.atomic():
        plain = [
            SimpleNamespace(
                company_id=incident.company_id,
                incident_id=incident.pk,
                key=key,
                first_alert_at=first,
                last_alert_at=last,
            )
            for key, first, last in rows
        ]
        bulk_insert(IncidentKey, plain)
        expected = sorted(
            (incident.company_id, incident.pk, key, first, last) for key, first, last in rows
        )
        assert _stored(incident) == expected
        stored = list(IncidentKey.objects.filter(incident=incident).order_by("pk"))
        changes = [
            SimpleNamespace(id=row.pk, first_alert_at=first, last_alert_at=last)
            for row, (_, first, last) in zip(stored, updates, strict=False)
        ]
        bulk_set(IncidentKey, changes, ["first_alert_at", "last_alert_at"])
        by_id = {change.id: change for change in changes}
        assert _stored(incident) == sorted(
            (
                row.company_id,
                row.incident_id,
                row.key,
                by_id[row.pk].first_alert_at if row.pk in by_id else row.first_alert_at,
                by_id[row.pk].last_alert_at if row.pk in by_id else row.last_alert_at,
            )
            for row in stored
        )
        transaction.set_rollback(True)


def test_model_instances_get_their_ids_and_equal_json_values_go_once(incident):
    copies = [_unsaved(incident.company_id, f"k{n}", ["Prometheus", "Zabbix"]) for n in range(3)]
    bulk_insert(Incident, copies)
    assert all(copy.pk for copy in copies)
    assert (
        list(
            Incident.objects.filter(pk__in=[c.pk for c in copies]).values_list(
                "tool_sources", flat=True
            )
        )
        == [["Prometheus", "Zabbix"]] * 3
    )


def test_any_finds_what_in_finds(incident):
    IncidentKey.objects.bulk_create(
        IncidentKey(
            company_id=incident.company_id,
            incident=incident,
            key=key,
            first_alert_at=BASE,
            last_alert_at=BASE,
        )
        for key in ("k:a", "k:b", "k:c")
    )
    for keys in (["k:a"], {"k:a", "k:c", "k:z"}, [], ["k:a", None]):
        assert set(IncidentKey.objects.filter(key__any=keys)) == set(
            IncidentKey.objects.filter(key__in=keys)
        )
    assert IncidentKey.objects.filter(incident__any=[incident.pk]).count() == 3
    assert Incident.objects.filter(Q(pk__any=[]) | Q(pk=incident.pk)).get() == incident


def test_planner_settings_last_for_the_block_only():
    def enabled() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_hashjoin")
            hash_join = cursor.fetchone()[0]
            cursor.execute("SHOW enable_mergejoin")
            return [hash_join, cursor.fetchone()[0]]

    with transaction.atomic():
        with planner(connection, hashjoin=False, mergejoin=False, sort=True):
            assert enabled() == ["off", "off"]
        assert enabled() == ["on", "on"]


def test_unsaved_instances_have_the_models_defaults_and_related_objects(incident):
    built = unsaved(Incident, related={"company": incident.company}, key="k", tool_sources=[])
    plain = Incident(company=incident.company, key="k", tool_sources=[])
    fields = [f.attname for f in Incident._meta.concrete_fields if f.attname != "created_at"]
    assert [getattr(built, name) for name in fields] == [getattr(plain, name) for name in fields]
    assert built.company is incident.company and built.asset is None
    a, b = unsaved(Asset, company_id=incident.company_id), unsaved(Asset)
    assert a.tags == {} and a.tags is not b.tags


def test_inserting_with_returning_returns_only_the_rows_not_skipped(incident):
    company = incident.company_id
    Asset.objects.create(company_id=company, name="db-01")
    returned = bulk_insert(
        Asset,
        [unsaved(Asset, company_id=company, name=name) for name in ("db-01", "pod-1", "pod-2")],
        ignore_conflicts=True,
        returning=("name", "id"),
    )
    assert sorted(name for name, _ in returned) == ["pod-1", "pod-2"]
    assert dict(returned) == dict(
        Asset.objects.filter(name__startswith="pod-").values_list("name", "id")
    )
