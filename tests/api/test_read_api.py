"""Odd input to the read API: a 400 or 404 in the API's error shape, never a 500 or an HTML
page."""

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

LISTS = [reverse("api:alert-list"), reverse("api:incident-list")]


@pytest.fixture
def api(technician_a) -> APIClient:
    _, token = AuthToken.objects.create(user=technician_a)
    return APIClient(HTTP_AUTHORIZATION=f"Token {token}")


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("param", ["since", "until"])
@pytest.mark.parametrize("offset", ["+23:00", "-16:00", "+14:01"])
def test_offset_beyond_real_time_zones_is_400(api, url, param, offset):
    response = api.get(url, {param: f"2026-01-01T00:00:00{offset}"})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == [param]
    assert "-12:00 and +14:00" in body["message"]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("offset", ["Z", "+14:00", "-12:00", "+05:30"])
def test_offsets_of_real_time_zones_are_accepted(api, url, offset):
    response = api.get(url, {"since": f"2026-01-01T00:00:00{offset}"})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("pk", ["1.5", "-6.3e-160", "x.json"])
def test_id_that_is_no_number_is_404_in_error_shape(api, url, pk):
    response = api.get(f"{url}{pk}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"
