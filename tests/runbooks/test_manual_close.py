"""A manual execution (no AWS link: the steps are shown to follow by hand) is closed by a
person as fixed, which resolves the incident, or not fixed, which keeps it open."""

import pytest

from apps.audit.models import AuditLog
from apps.incidents.models import IncidentEvent
from apps.runbooks.models import RunbookExecution
from tests.factories import UserFactory
from tests.incidents.factories import IncidentFactory
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manual(company_a):
    incident = IncidentFactory(company=company_a, signature="disk_full")
    runbook = RunbookFactory(company=company_a, name="Clean the journal")
    return RunbookExecution.objects.create(
        company=company_a, incident=incident, runbook=runbook, status="manual", mode="manual"
    )


def close_url(execution) -> str:
    return f"/incidents/{execution.incident_id}/runbooks/{execution.pk}/close/"


def test_the_panel_offers_to_close_the_steps(client, technician_a, manual):
    client.force_login(technician_a)
    body = client.get(f"/incidents/{manual.incident_id}/runbooks/").content.decode()
    assert "Done: fixed" in body and "Done: not fixed" in body


def test_fixed_resolves_the_incident(client, technician_a, manual):
    client.force_login(technician_a)
    response = client.post(close_url(manual), {"result": "fixed", "note": "Vacuumed to 200M"})
    assert response.status_code == 302
    manual.refresh_from_db()
    manual.incident.refresh_from_db()
    assert manual.status == "success"
    assert manual.incident.status == "resolved" and manual.incident.resolved_by == technician_a
    assert IncidentEvent.objects.filter(
        kind="runbook", text__startswith="“Clean the journal” followed by hand: fixed it."
    ).exists()
    assert AuditLog.objects.filter(details__result="manual_fixed").exists()


def test_not_fixed_keeps_the_incident_open(client, technician_a, manual):
    client.force_login(technician_a)
    body = client.post(
        close_url(manual), {"result": "not_fixed"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "the incident stays open" in body
    manual.refresh_from_db()
    manual.incident.refresh_from_db()
    assert manual.status == "failed" and "did not fix it" in manual.error
    assert manual.incident.status == "new"
    assert "Done: fixed" not in body


def test_closing_twice_is_refused(client, technician_a, manual):
    client.force_login(technician_a)
    client.post(close_url(manual), {"result": "not_fixed"})
    response = client.post(close_url(manual), {"result": "fixed"}, follow=True)
    assert "already closed" in response.content.decode()
    manual.incident.refresh_from_db()
    assert manual.incident.status == "new"


def test_only_people_who_may_update_the_incident_close_it(client, technician_b, manual, company_a):
    client.force_login(technician_b)
    assert client.post(close_url(manual), {"result": "fixed"}).status_code == 404
    client.force_login(UserFactory(companies=[company_a]))
    client.post(close_url(manual), {"result": "fixed"})
    manual.refresh_from_db()
    assert manual.status == "manual"


def test_an_execution_of_another_incident_is_not_closed_here(
    client, technician_a, manual, company_a
):
    other = IncidentFactory(company=company_a)
    client.force_login(technician_a)
    response = client.post(
        f"/incidents/{other.pk}/runbooks/{manual.pk}/close/", {"result": "fixed"}, follow=True
    )
    assert "not on this incident" in response.content.decode()
    manual.refresh_from_db()
    assert manual.status == "manual"
