"""The incidents' references that are nearly always empty are indexed without the empty
rows (migration incidents 0016): deleting what they point to still finds the incidents by
index, and a sweep's update of an incident whose references are empty adds no entry."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.incidents.models import Incident
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["acknowledged_by", "resolved_by", "merged_into"])
def test_a_deleted_reference_finds_its_incidents_by_index(name, technician_a, company_a):
    referenced = IncidentFactory(company=company_a) if name == "merged_into" else technician_a
    incident = IncidentFactory(company=company_a, **{name: referenced})
    IncidentFactory.create_batch(3, company=company_a)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_incident")
        cursor.execute("SET LOCAL enable_seqscan = off")
    # What deleting the user or the incident runs (on_delete=SET_NULL).
    references = Incident.objects.filter(**{f"{name}__in": [referenced.pk]})
    assert f"incident_{name}" in references.explain()
    referenced.delete()
    incident.refresh_from_db()
    assert getattr(incident, f"{name}_id") is None


def test_the_reference_indexes_leave_out_empty_rows(company_a):
    IncidentFactory.create_batch(3, company=company_a)
    with connection.cursor() as cursor:
        for name in ("acknowledged_by", "resolved_by", "merged_into"):
            cursor.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND i.indpred IS NOT NULL",
                [f"incident_{name}"],
            )
            assert cursor.fetchone()[0] == 1, name
