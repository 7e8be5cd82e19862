"""Links back to the tool and the raw payload (redacted, escaped, scoped), on the console
and through the API."""

import json
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.urls import reverse

from apps.alerts import adapters
from apps.alerts.selectors import REDACTED, alert_links, redacted
from tests.alerts.test_api import api, detail
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def stored(company, source: str, name: str, index: int = 0):
    """The alert an adapter makes of a fixture, saved for ``company``."""
    data = json.loads((FIXTURES / name).read_text())
    body = data["body"] if "_source" in data else data
    result = adapters.parse(
        source,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers={},
        options=adapters.AdapterOptions(),
    )
    alert = result.alerts[index]
    return AlertFactory(
        company=company,
        source=source,
        raw=alert.raw,
        labels=alert.labels,
        signature=alert.signature,
    )


def links(alert) -> dict[str, str]:
    return {link.label: link.url for link in alert_links(alert=alert)}


def test_alertmanager_graph_and_prefilled_silence(company_a):
    alert = stored(company_a, "alertmanager", "alertmanager/alertmanager_watchdog_firing.json")
    found = links(alert)
    assert found["Prometheus graph"].startswith("http://127.0.0.1:19090/graph?g0.expr=")
    silence = found["Silence in Alertmanager"]
    assert silence.startswith("http://127.0.0.1:19093/#/silences/new?filter=")
    assert unquote(silence.partition("filter=")[2]) == (
        '{alertname="Watchdog",env="staging",severity="none"}'
    )


def test_grafana_panel_dashboard_and_silence(company_a):
    alert = stored(company_a, "grafana", "documented/grafana_webhook_firing.json")
    assert {"Grafana panel", "Grafana dashboard", "Silence in Grafana"} <= set(links(alert))


def test_datadog_monitor(company_a):
    alert = stored(company_a, "datadog", "documented/datadog_webhook_default_triggered.json")
    assert links(alert)["Datadog monitor"].startswith("https://app.datadoghq.com/monitors/98765432")


def test_zabbix_event_page(company_a):
    alert = stored(company_a, "zabbix", "documented/zabbix_webhook_problem.json")
    assert links(alert) == {
        "Zabbix event": "https://zabbix.example.com/tr_events.php?triggerid=23874&eventid=1048576"
    }


def test_pagerduty_client_and_links(company_a):
    alert = AlertFactory(
        company=company_a,
        source="pagerduty",
        raw={
            "client": "Uptime Kuma",
            "client_url": "https://status.example.com/dashboard/3",
            "links": [{"href": "https://example.com/runbook", "text": "Runbook"}, "odd"],
        },
    )
    assert links(alert) == {
        "Uptime Kuma": "https://status.example.com/dashboard/3",
        "Runbook": "https://example.com/runbook",
    }


def test_cloudwatch_alarm(company_a):
    alert = AlertFactory(
        company=company_a, source="sns", signature="High CPU", labels={"region": "eu-west-1"}
    )
    assert links(alert) == {
        "CloudWatch alarm": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home"
        "?region=eu-west-1#alarmsV2:alarm/High%20CPU"
    }


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "data:text/html,x", "//evil.example", "https://u:p@x.example/", 7],
)
def test_only_plain_web_urls_become_links(company_a, url):
    alert = AlertFactory(company=company_a, source="grafana", raw={"panelURL": url})
    assert links(alert) == {}


def test_secrets_are_redacted():
    raw = {
        "routing_key": "R0123",
        "Signature": "abc",
        "UnsubscribeURL": "https://sns.example/?Action=Unsubscribe",
        "nested": [{"password": "hunter2", "db_token": "t", "empty_token": ""}],
        "url": "https://user:pw@grafana.example/d/x?orgId=1&api_key=k",
        "plain": "https://grafana.example/d/x?orgId=1",
        "summary": "token expired on host",
    }
    assert redacted(raw) == {
        "routing_key": REDACTED,
        "Signature": REDACTED,
        "UnsubscribeURL": REDACTED,
        "nested": [{"password": REDACTED, "db_token": REDACTED, "empty_token": ""}],
        "url": "https://grafana.example/d/x?orgId=1&api_key=[redacted]",
        "plain": "https://grafana.example/d/x?orgId=1",
        "summary": "token expired on host",
    }


def test_source_panel_escapes_and_redacts(client, technician_a, company_a):
    alert = AlertFactory(
        company=company_a,
        source="grafana",
        raw={"message": "<script>x()</script>", "panelURL": "https://g.example/p", "token": "s3"},
        repeat_count=2,
        delivery_ids=["d-1", "d-2"],
    )
    client.force_login(technician_a)
    response = client.get(reverse("alerts:source", args=[alert.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "s3" not in html and REDACTED in html
    assert 'href="https://g.example/p"' in html
    assert "Re-sent 2 times" in html and "<code>d-2</code>" in html


def test_source_panel_is_scoped(client, technician_b, company_a):
    alert = AlertFactory(company=company_a)
    client.force_login(technician_b)
    assert client.get(reverse("alerts:source", args=[alert.pk])).status_code == 404


def test_source_panel_needs_a_login(client, company_a):
    alert = AlertFactory(company=company_a)
    response = client.get(reverse("alerts:source", args=[alert.pk]))
    assert response.status_code == 302


def test_incident_page_offers_the_source_panel(client, technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    alert = AlertFactory(company=company_a, incident=incident)
    client.force_login(technician_a)
    html = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert f'hx-get="{reverse("alerts:source", args=[alert.pk])}"' in html


def test_api_detail_has_links_and_redacted_raw(technician_a, company_a):
    alert = AlertFactory(
        company=company_a,
        source="grafana",
        raw={"panelURL": "https://g.example/p", "password": "pw"},
    )
    body = api(technician_a).get(detail(alert)).json()
    assert body["links"] == [{"label": "Grafana panel", "url": "https://g.example/p"}]
    assert body["raw"] == {"panelURL": "https://g.example/p", "password": REDACTED}
