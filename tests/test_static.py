"""Static files are served by the application itself, whatever server runs it."""

import pytest

pytestmark = pytest.mark.django_db


def test_stylesheet_and_htmx_are_served(client):
    for path in ("/static/css/app.css", "/static/django_htmx/htmx-2.min.js", "/static/js/live.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content if response.streaming else [response.content])
