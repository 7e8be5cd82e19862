"""Logging in with email and password, and what each role sees."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditLog
from tests.factories import PASSWORD, AssetFactory

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD):
    return client.post(reverse("accounts:login"), {"username": email, "password": password})


def test_login_with_email_and_password_lands_on_home(client, technician_a, company_a, company_b):
    response = login(client, "tech@acme.example")
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert "Acme Corp" in home.content.decode()
    assert "Globex" not in home.content.decode()
    assert AuditLog.objects.filter(action="login", actor=technician_a).exists()


def test_email_is_case_insensitive_at_login(client, technician_a):
    response = login(client, "TECH@Acme.example")
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_wrong_password_shows_a_clear_error(client, technician_a):
    response = login(client, "tech@acme.example", "wrong")
    assert response.status_code == 200
    assert "That email and password do not match an active account." in response.content.decode()
    assert AuditLog.objects.filter(action="login_failed").exists()


def test_anonymous_users_are_sent_to_login(client, company_a):
    for url in (reverse("home"), reverse("tenants:company_detail", args=["acme"])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_msp_admin_sees_every_company(client, msp_admin, company_a, company_b):
    client.force_login(msp_admin)
    body = client.get(reverse("home")).content.decode()
    assert "Acme Corp" in body and "Globex" in body


@pytest.mark.parametrize("who", ["technician_a", "company_admin_a"])
def test_company_pages_are_scoped(request, client, who, company_a, company_b):
    client.force_login(request.getfixturevalue(who))
    AssetFactory(company=company_a, name="srv-acme")
    AssetFactory(company=company_b, name="srv-globex")
    own = client.get(reverse("tenants:company_detail", args=["acme"]))
    assert own.status_code == 200
    assert "srv-acme" in own.content.decode()
    assert "srv-globex" not in own.content.decode()
    assert client.get(reverse("tenants:company_detail", args=["globex"])).status_code == 404


def test_api_key_prefix_only_for_those_who_manage_the_company(
    client, technician_a, company_admin_a, company_a
):
    from apps.tenants.services import api_key_regenerate

    raw_key = api_key_regenerate(company=company_a)
    visible_prefix = raw_key[: len("aw_") + 9]
    url = reverse("tenants:company_detail", args=["acme"])
    client.force_login(company_admin_a)
    body = client.get(url).content.decode()
    assert visible_prefix in body
    assert raw_key not in body
    client.force_login(technician_a)
    assert visible_prefix not in client.get(url).content.decode()


def test_logout_requires_post(client, technician_a):
    client.force_login(technician_a)
    assert client.get(reverse("accounts:logout")).status_code == 405
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("home")).status_code == 302
