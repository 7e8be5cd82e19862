"""Saved views of the Incidents page: per person, canonical queries, listed, deleted."""

import pytest

from apps.saved_views.models import SavedView
from tests.incidents.factories import IncidentFactory

pytestmark = pytest.mark.django_db


def test_save_list_open_and_delete_a_view(client, technician_a, company_a):
    IncidentFactory(company=company_a, asset_name="srv-db-01")
    client.force_login(technician_a)
    response = client.post(
        "/views/",
        {"name": "My DB storm", "query": "q=srv-db&assignee=mine&page=3&evil=1&status=open"},
    )
    view = SavedView.objects.get()
    assert view.user == technician_a and view.query == "q=srv-db&assignee=mine"
    assert response["Location"] == "/incidents/?q=srv-db&assignee=mine"
    page = client.get("/incidents/").content.decode()
    assert 'href="/incidents/?q=srv-db&amp;assignee=mine">My DB storm</a>' in page

    client.post("/views/", {"name": "My DB storm", "query": "severity=critical"})
    assert SavedView.objects.get().query == "severity=critical"  # same name: overwritten

    client.post(f"/views/{view.pk}/delete/")
    assert not SavedView.objects.exists()


def test_views_are_private(client, technician_a, technician_b):
    theirs = SavedView.objects.create(user=technician_b, name="Globex", query="q=globex")
    client.force_login(technician_a)
    assert "Globex" not in client.get("/incidents/").content.decode()
    client.post(f"/views/{theirs.pk}/delete/")
    assert SavedView.objects.filter(pk=theirs.pk).exists()


def test_a_view_needs_a_name_post_and_a_login(client, technician_a):
    assert client.post("/views/", {"name": "x"}).status_code == 302  # to the login
    assert not SavedView.objects.exists()
    client.force_login(technician_a)
    response = client.post("/views/", {"name": "  ", "query": "q=x"}, follow=True)
    assert "Name the view." in response.content.decode()
    assert client.get("/views/").status_code == 405
    assert not SavedView.objects.exists()
