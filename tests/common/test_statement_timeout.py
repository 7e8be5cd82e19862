"""A page or API list whose query runs past the statement timeout (the web servers set
30 s) answers 503 with ``Retry-After`` and says so, like an outage, instead of a 500. Held
here by another session's lock on the incidents table, with a 300 ms timeout."""

from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from django.db.models.signals import post_delete
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from apps.tenants.models import Company

MESSAGE = (
    "The database stopped this request: one of its queries ran past the 300ms time limit or "
    "was cancelled."
)


@pytest.fixture
def incidents_locked(db) -> Iterator[None]:
    settings_dict = connection.settings_dict
    with psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
    ) as holder:
        holder.execute("LOCK TABLE incidents_incident IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '300ms'")
        with override_settings(DATABASE_STATEMENT_TIMEOUT="300ms"):
            yield


def test_a_page_past_the_statement_timeout_is_a_clear_503(client, technician_a, request):
    client.force_login(technician_a)
    request.getfixturevalue("incidents_locked")
    response = client.get(reverse("incidents:list"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert MESSAGE in response.content.decode()


def test_an_api_list_past_the_statement_timeout_is_a_clear_json_503(technician_a, request):
    api = APIClient()
    api.force_authenticate(technician_a)
    request.getfixturevalue("incidents_locked")
    response = api.get(reverse("api:incident-list"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": "service_unavailable",
        "message": f"{MESSAGE} Try again in 5 s; if it happens again, narrow the filter or "
        "tell your administrator.",
    }


@pytest.mark.django_db(transaction=True)
def test_deleting_a_company_in_the_admin_runs_without_the_statement_timeout(
    client, msp_admin, company_a
):
    """Its alerts and incidents go in a few statements that may run long for a large
    client: the admin's delete lifts the limit for its own transaction only."""
    seen = []

    def read_timeout(sender, instance, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '20s'")
    client.force_login(msp_admin)
    post_delete.connect(read_timeout, sender=Company)
    try:
        response = client.post(
            reverse("admin:tenants_company_delete", args=[company_a.pk]), {"post": "yes"}
        )
    finally:
        post_delete.disconnect(read_timeout, sender=Company)
    assert response.status_code == 302
    assert seen == ["0"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "20s"
