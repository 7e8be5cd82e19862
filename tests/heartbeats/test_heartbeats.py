"""Heartbeats with time travel: on time, late, recovered, deleted; Watchdog alerts as pings;
two companies; the ping URL and the console list."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse

from apps.alerts.models import Alert
from apps.audit.models import AuditLog
from apps.heartbeats.models import Heartbeat, HeartbeatState
from apps.heartbeats.services import (
    heartbeat_create,
    heartbeat_delete,
    heartbeat_ping,
    heartbeats_check,
)
from apps.incidents.models import Incident
from apps.tenants.models import Company
from apps.tenants.services import company_create

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run a service and the correlation it schedules after commit."""

    def run(function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(**kwargs)

    return run


@pytest.fixture
def prometheus(company_a):
    heartbeat = heartbeat_create(
        company=company_a,
        name="Prometheus",
        interval=timedelta(minutes=5),
        grace=timedelta(minutes=2),
    )
    Heartbeat.objects.filter(pk=heartbeat.pk).update(created_at=T0)
    heartbeat.refresh_from_db()
    return heartbeat


def open_incidents(company):
    return Incident.objects.filter(company=company).exclude(status="resolved")


def test_on_time_pings_keep_it_up(prometheus, run_on_commit):
    for minutes in (4, 9, 14):
        heartbeat_ping(token=prometheus.token, now=T0 + timedelta(minutes=minutes))
        assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=minutes + 6)) == 0
    prometheus.refresh_from_db()
    assert prometheus.state == HeartbeatState.UP
    assert prometheus.last_ping_at == T0 + timedelta(minutes=14)
    assert not Alert.objects.exists()


def test_late_opens_an_incident_once_and_pings_resolve_it(prometheus, company_a, run_on_commit):
    heartbeat_ping(token=prometheus.token, now=T0 + timedelta(minutes=1))
    # Due at 1 + 5 + 2 = minute 8.
    assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=7, seconds=59)) == 0
    assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=8, seconds=1)) == 1
    assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=9)) == 0
    prometheus.refresh_from_db()
    assert prometheus.state == HeartbeatState.DOWN
    incident = open_incidents(company_a).get()
    assert incident.title == "Stopped reporting on Prometheus"
    alert = Alert.objects.get()
    assert "Prometheus at Acme" in alert.message and "stopped reporting" in alert.message

    run_on_commit(heartbeat_ping, token=prometheus.token, now=T0 + timedelta(minutes=20))
    prometheus.refresh_from_db()
    assert (prometheus.state, prometheus.down_since) == (HeartbeatState.UP, None)
    incident.refresh_from_db()
    assert (incident.status, incident.resolution) == ("resolved", "source")
    # Silent again within the correlation window (15 min) of that recovery: the same
    # incident comes back, as flapping (docs/decisions.md, "Flapping").
    assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=28)) == 1
    assert open_incidents(company_a).get() == incident
    # Back, then silent again long after: a new incident.
    run_on_commit(heartbeat_ping, token=prometheus.token, now=T0 + timedelta(minutes=30))
    assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=60)) == 1
    assert open_incidents(company_a).exclude(pk=incident.pk).count() == 1
    assert Incident.objects.filter(company=company_a).count() == 2


def test_never_pinged_goes_down_after_its_first_interval(prometheus, company_a, run_on_commit):
    assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=8)) == 1
    assert "never reported" in Alert.objects.get().message


def test_deleting_a_down_heartbeat_resolves_its_incident(prometheus, company_a, run_on_commit):
    run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=8))
    run_on_commit(heartbeat_delete, heartbeat=prometheus, now=T0 + timedelta(minutes=9))
    assert not Heartbeat.objects.exists()
    assert not open_incidents(company_a).exists()
    assert AuditLog.objects.filter(action="heartbeat_deleted").count() == 1


def test_two_companies_are_apart(prometheus, company_a, company_b, run_on_commit):
    other = heartbeat_create(
        company=company_b, name="Prometheus", interval=timedelta(minutes=5), grace=timedelta()
    )
    heartbeat_ping(token=other.token, now=T0 + timedelta(minutes=6))
    Heartbeat.objects.filter(pk=other.pk).update(created_at=T0)
    assert run_on_commit(heartbeats_check, now=T0 + timedelta(minutes=9)) == 1
    assert open_incidents(company_a).count() == 1
    assert not open_incidents(company_b).exists()
    assert heartbeat_ping(token=prometheus.token + "x", now=T0) is None


def test_watchdog_alerts_are_pings(company_a, client, run_on_commit):
    company, key = company_create(company=Company(name="Globex", slug="globex"))
    watchdog = heartbeat_create(
        company=company,
        name="Alertmanager",
        interval=timedelta(minutes=1),
        grace=timedelta(minutes=1),
        alert_name="Watchdog",
    )
    body = json.loads((FIXTURES / "alertmanager/alertmanager_watchdog_firing.json").read_text())
    body["alerts"][0]["startsAt"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for _ in range(2):
        response = run_on_commit(
            client.post,
            path="/api/webhooks/alerts/alertmanager",
            data=json.dumps(body),
            content_type="application/json",
            headers={"X-API-Key": key},
        )
        assert response.status_code == 202
    # A ping is stored, but opens no incident of its own.
    assert Alert.objects.get(signature="Watchdog").correlated_at is not None
    assert not Incident.objects.filter(company=company).exists()
    now = datetime.now(UTC)
    assert run_on_commit(heartbeats_check, now=now) == 0
    watchdog.refresh_from_db()
    assert watchdog.state == HeartbeatState.UP
    assert watchdog.last_ping_at == Alert.objects.get(signature="Watchdog").last_seen_at
    # Alertmanager goes silent: the Watchdog's last re-send grows old.
    assert run_on_commit(heartbeats_check, now=now + timedelta(minutes=3)) == 1
    assert open_incidents(company).get().title == "Stopped reporting on Alertmanager"


def test_a_watchdog_is_an_ordinary_alert_until_a_heartbeat_names_it(client, run_on_commit):
    company, key = company_create(company=Company(name="Globex", slug="globex"))
    body = json.loads((FIXTURES / "alertmanager/alertmanager_watchdog_firing.json").read_text())
    body["alerts"][0]["startsAt"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    post = {
        "path": "/api/webhooks/alerts/alertmanager",
        "data": json.dumps(body),
        "content_type": "application/json",
        "headers": {"X-API-Key": key},
    }
    assert run_on_commit(client.post, **post).status_code == 202
    assert Incident.objects.filter(company=company, signature="Watchdog").exists()
    heartbeat = heartbeat_create(
        company=company,
        name="Alertmanager",
        interval=timedelta(minutes=1),
        grace=timedelta(minutes=1),
        alert_name="Watchdog",
    )
    company.refresh_from_db()
    assert company.ping_signatures == ["Watchdog"]
    body["alerts"][0]["startsAt"] = datetime.now(UTC).isoformat()
    post["data"] = json.dumps(body)
    assert run_on_commit(client.post, **post).status_code == 202
    assert Incident.objects.filter(company=company).count() == 1
    heartbeat_delete(heartbeat=heartbeat, now=datetime.now(UTC))
    company.refresh_from_db()
    assert company.ping_signatures == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_ping_url(client, prometheus, method):
    url = reverse("heartbeat-ping", args=[prometheus.token])
    response = getattr(client, method)(url)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "heartbeat": "Prometheus"}
    prometheus.refresh_from_db()
    assert prometheus.state == HeartbeatState.UP
    assert client.get(reverse("heartbeat-ping", args=["nope"])).status_code == 404


def test_list_shows_state_and_last_ping_of_visible_companies(
    client, technician_a, prometheus, company_b
):
    heartbeat_create(
        company=company_b, name="Hidden", interval=timedelta(minutes=5), grace=timedelta()
    )
    heartbeat_ping(token=prometheus.token, now=T0)
    client.force_login(technician_a)
    html = client.get(reverse("heartbeats:list")).content.decode()
    assert "Prometheus" in html and "Reporting" in html and "Hidden" not in html
    assert prometheus.token in html
    assert "New heartbeat" not in html


def test_company_admin_creates_and_deletes(client, company_admin_a, company_a):
    client.force_login(company_admin_a)
    response = client.post(
        reverse("heartbeats:list"),
        {
            "company": company_a.pk,
            "name": "Backups",
            "interval_minutes": 60,
            "grace_minutes": 10,
            "alert_name": "",
        },
    )
    assert response.status_code == 302
    heartbeat = Heartbeat.objects.get(name="Backups")
    assert (heartbeat.interval, heartbeat.grace) == (timedelta(hours=1), timedelta(minutes=10))
    assert AuditLog.objects.filter(action="heartbeat_created", company=company_a).exists()
    duplicate = client.post(
        reverse("heartbeats:list"),
        {"company": company_a.pk, "name": "Backups", "interval_minutes": 5, "grace_minutes": 0},
    )
    assert duplicate.status_code == 400
    assert client.post(reverse("heartbeats:delete", args=[heartbeat.pk])).status_code == 302
    assert not Heartbeat.objects.exists()


def test_technicians_cannot_manage(client, technician_a, prometheus, company_a):
    client.force_login(technician_a)
    created = client.post(
        reverse("heartbeats:list"),
        {"company": company_a.pk, "name": "X", "interval_minutes": 5, "grace_minutes": 0},
    )
    assert created.status_code == 403
    assert client.post(reverse("heartbeats:delete", args=[prometheus.pk])).status_code == 403
    assert Heartbeat.objects.count() == 1


def test_another_companys_heartbeat_is_a_404(client, company_admin_a, company_b):
    other = heartbeat_create(
        company=company_b, name="Theirs", interval=timedelta(minutes=5), grace=timedelta()
    )
    client.force_login(company_admin_a)
    assert client.post(reverse("heartbeats:delete", args=[other.pk])).status_code == 404


def test_alert_pings_of_every_heartbeat_are_read_in_one_query(company_a, company_b):
    """The periodic check reads when each alert-fed heartbeat last heard from its alert
    with one query for all of them, and each gets its own company's ping."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.alerts.adapters import NormalizedAlert
    from apps.alerts.services import alerts_ingest

    heartbeats = {}
    for company in (company_a, company_b):
        for name in ("Watchdog", "DeadMansSwitch"):
            heartbeats[company.pk, name] = heartbeat_create(
                company=company,
                name=f"{name} feed",
                interval=timedelta(hours=1),
                grace=timedelta(hours=1),
                alert_name=name,
            )
    sent = {}
    for minutes, (company, name) in enumerate(
        [(company_a, "Watchdog"), (company_b, "Watchdog"), (company_b, "DeadMansSwitch")]
    ):
        at = T0 - timedelta(minutes=10 - minutes)
        alerts_ingest(
            company=company,
            alerts=[
                NormalizedAlert(
                    asset_name="prometheus",
                    signature=name,
                    severity="low",
                    message="ping",
                    tool_source="Alertmanager",
                    status="firing",
                    fingerprint=f"{company.pk}-{name}",
                    event_time=at,
                    labels={},
                    raw={},
                )
            ],
            source="alertmanager",
            delivery_id="",
            received_at=at,
        )
        sent[company.pk, name] = Alert.objects.get(company=company, signature=name).last_seen_at
    with CaptureQueriesContext(connection) as queries:
        assert heartbeats_check(now=T0) == 0
    assert sum('FROM "alerts_alert"' in q["sql"] for q in queries.captured_queries) == 1
    for (company_id, name), heartbeat in heartbeats.items():
        heartbeat.refresh_from_db()
        assert heartbeat.last_ping_at == sent.get((company_id, name))
