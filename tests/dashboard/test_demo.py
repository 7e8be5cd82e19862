"""The demo storm goes through the real webhook path and fills a company's dashboard."""

import time
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apps.alerts.models import Alert, Delivery
from apps.dashboard.demo import run_storm, storm_plan
from apps.incidents.correlation import correlate_company
from apps.incidents.models import Incident
from apps.tenants.models import Company
from apps.tenants.services import company_create, hmac_enable
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class SimulatedClock:
    def __init__(self) -> None:
        self.start = self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def acme():
    company, _ = company_create(company=Company(name="Acme", slug="acme"))
    return company


def test_plan_mixes_sources_duplicates_and_resolutions(acme):
    plan = storm_plan(company=acme, now=datetime(2026, 11, 23, tzinfo=UTC))
    assert {d.source for d in plan} == {"alertmanager", "datadog", "generic"}
    assert [d.at for d in plan] == sorted(d.at for d in plan)
    assert plan[-1].at <= 45
    assert len(plan) < acme.rate_limit_burst  # the storm fits the default bucket
    assert len({d.delivery_id for d in plan}) == len(plan)
    statuses = {a["status"] for d in plan if d.source == "alertmanager" for a in d.body["alerts"]}
    assert statuses == {"firing", "resolved"}


def test_storm_through_the_webhook_correlates_and_scores(acme):
    hmac_enable(company=acme)  # deliveries are signed like a real tool's
    acme.refresh_from_db()
    clock = SimulatedClock()
    report = run_storm(company=acme, sleep=clock.sleep, clock=clock)
    assert clock.now - clock.start >= 40  # paced over the storm's length, in simulated time
    assert report.refused == []
    # Every notification is accounted for: a distinct alert, or a re-send merged into one.
    alerts = Alert.objects.filter(company=acme)
    stored = alerts.count()
    assert stored + sum(alerts.values_list("repeat_count", flat=True)) == report.alerts > 250
    assert Delivery.objects.filter(company=acme).count() == report.deliveries
    correlate_company(company_id=acme.pk)
    incidents = Incident.objects.filter(company=acme)
    # Noise reduction counts distinct alerts (docs/decisions.md, "Repeat notifications").
    noise = 1 - incidents.count() / stored
    assert noise > 0.9
    disk = incidents.get(signature="disk_full")
    assert disk.tool_sources == ["Datadog", "Zabbix"] and disk.alert_count == 21
    assert incidents.filter(status="resolved", resolution="source").count() >= 2


def test_the_button_is_for_people_who_work_incidents_in_demo_mode(
    client, settings, msp_admin, technician_a, company_a, monkeypatch
):
    started = []
    monkeypatch.setattr(
        "apps.dashboard.views.start_storm_in_background",
        lambda company_id: started.append(company_id),
    )
    settings.DEBUG = True
    client.force_login(technician_a)
    assert "Simulate an alert storm" in client.get(reverse("home")).content.decode()
    assert client.post(reverse("dashboard:demo_storm")).status_code == 302
    assert started == [company_a.pk]
    client.force_login(UserFactory(companies=[company_a]))  # no role
    assert "Simulate an alert storm" not in client.get(reverse("home")).content.decode()
    assert client.post(reverse("dashboard:demo_storm")).status_code == 403
    client.force_login(msp_admin)
    assert "Simulate an alert storm" in client.get(reverse("home")).content.decode()
    settings.DEBUG = False
    assert "Simulate an alert storm" not in client.get(reverse("home")).content.decode()
    assert client.post(reverse("dashboard:demo_storm")).status_code == 403
    assert client.get(reverse("dashboard:demo_storm")).status_code == 405
    assert started == [company_a.pk]
