"""Refusals and missing pages are the product's own pages, never a stack trace."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_missing_page_with_debug_off(client, settings, technician_a):
    settings.DEBUG = False
    client.force_login(technician_a)
    response = client.get("/incidents/999999/")
    assert response.status_code == 404
    assert "belongs to a company you are not a member of" in response.content.decode()


def test_csrf_refusal_is_explained(technician_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(technician_a)
    response = client.post("/accounts/switch-company/", {"company": "all"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
