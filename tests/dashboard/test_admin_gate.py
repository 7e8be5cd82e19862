"""/admin/ is for MSP admins: others who are signed in get a 403 page, not a login form;
and the favicon is served."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["technician_a", "company_admin_a"])
@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/admin/accounts/user/"])
def test_signed_in_non_msp_users_get_403_on_admin(request, client, who, path):
    client.force_login(request.getfixturevalue(who))
    response = client.get(path)
    assert response.status_code == 403
    assert "The administration is for MSP admins." in response.content.decode()


def test_anonymous_visitors_get_the_admin_login(client):
    assert client.get("/admin/login/").status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_msp_admins_get_the_admin(client, msp_admin):
    client.force_login(msp_admin)
    assert client.get("/admin/").status_code == 200


def test_the_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
