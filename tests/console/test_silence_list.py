"""The silences page counts the alerts each silence held the same way whether the
database checks label matchers (PostgreSQL) or Python does (SQLite, the embedded demo:
no JSON containment). The second path is taken here by switching the feature off."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.silences.selectors import silence_list
from apps.silences.services import silence_create
from tests.incidents.factories import AlertFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def silences(company_a, company_b, company_admin_a, msp_admin):
    now = timezone.now()
    made = {
        "by_label": silence_create(
            company=company_a,
            asset_name="",
            signature="",
            labels={"team": "dba"},
            reason="DBA on it",
            ends_at=now + timedelta(hours=1),
            actor=company_admin_a,
        ),
        "by_host": silence_create(
            company=company_a,
            asset_name="SRV-DB-01",
            signature="",
            labels={},
            reason="Disk swap",
            ends_at=now + timedelta(hours=1),
            actor=company_admin_a,
        ),
    }
    for labels, asset in (
        ({"team": "dba"}, "srv-db-01"),
        ({"team": "dba", "env": "prod"}, "srv-db-02"),
        ({"team": "web"}, "srv-db-01"),
    ):
        AlertFactory(company=company_a, asset_name=asset, labels=labels)
    AlertFactory(company=company_b, asset_name="srv-db-01", labels={"team": "dba"})
    AlertFactory(  # before the silences began
        company=company_a, labels={"team": "dba"}, received_at=now - timedelta(hours=2)
    )
    return made


def held(company_ids):
    return {s.reason: s.held for s in silence_list(company_ids=company_ids, active=True)}


def test_held_counts_agree_with_and_without_json_containment(
    silences, company_a, company_b, monkeypatch
):
    in_sql = held([company_a.pk, company_b.pk])
    assert in_sql == {"DBA on it": 2, "Disk swap": 2}
    monkeypatch.setattr(connection.features, "supports_json_field_contains", False)
    assert held([company_a.pk, company_b.pk]) == in_sql


def test_the_silences_page_answers_without_json_containment(
    client, silences, technician_a, monkeypatch
):
    monkeypatch.setattr(connection.features, "supports_json_field_contains", False)
    client.force_login(technician_a)
    response = client.get("/silences/")
    assert response.status_code == 200
    assert "DBA on it" in response.content.decode()
