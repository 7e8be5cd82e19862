"""One time rule: the viewer's zone (chosen, else the browser's, else UTC) with its label,
and relative times to the second."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import RequestFactory

from apps.audit.models import AuditLog
from apps.dashboard.templatetags.console_time import ago, viewer_zone
from tests.incidents.factories import AlertFactory, IncidentFactory

NOW = datetime(2026, 12, 2, 16, 52, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=0), "0 s ago"),
        (timedelta(seconds=12), "12 s ago"),
        (timedelta(minutes=4, seconds=10), "4 min 10 s ago"),
        (timedelta(hours=3, minutes=5), "3 h 5 min ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=3, hours=2), "3 days ago"),
        (timedelta(seconds=-30), "in 30 s"),
    ],
)
def test_relative_times_count_seconds(delta, text):
    assert ago(NOW - delta, NOW) == text


@pytest.mark.django_db
def test_the_viewers_zone(technician_a):
    request = RequestFactory().get("/")
    request.user = technician_a
    assert viewer_zone(request) == "UTC"
    request.COOKIES["aw_tz"] = "Europe/Berlin"
    assert viewer_zone(request) == "Europe/Berlin"
    technician_a.time_zone = "America/New_York"
    assert viewer_zone(request) == "America/New_York"
    technician_a.time_zone = "Mars/Olympus"
    request.COOKIES["aw_tz"] = "<script>"
    assert viewer_zone(request) == "UTC"
    assert viewer_zone(None) == "UTC"


@pytest.mark.django_db
def test_pages_show_times_in_the_viewers_zone_with_its_label(client, technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    AlertFactory(incident=incident, event_time=datetime(2026, 7, 1, 12, 0, 5, tzinfo=UTC))
    client.force_login(technician_a)
    client.cookies["aw_tz"] = "Europe/Berlin"
    body = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "times in Europe/Berlin" in body
    assert "Jul 1, 14:00:05 CEST" in body
    alerts = client.get("/dashboard/alerts/").content.decode()
    assert 'title="Jul 1, 14:00:05 CEST"' in alerts


@pytest.mark.django_db
def test_choosing_a_time_zone(client, technician_a):
    client.force_login(technician_a)
    assert "My browser&#x27;s zone" in client.get("/dashboard/preferences/").content.decode()
    response = client.post("/dashboard/preferences/", {"time_zone": "Asia/Tokyo"}, follow=True)
    assert "Times are now shown in Asia/Tokyo." in response.content.decode()
    technician_a.refresh_from_db()
    assert technician_a.time_zone == "Asia/Tokyo"
    assert AuditLog.objects.filter(action="preference_changed").count() == 1
    bad = client.post("/dashboard/preferences/", {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    technician_a.refresh_from_db()
    assert technician_a.time_zone == "Asia/Tokyo"
