"""The dashboard: scoped to the viewer's companies, cards computed from stored data,
filters, the company switcher, and fixed query counts."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(company_a, company_b):
    acme = IncidentFactory(company=company_a, title="disk_full on acme-db", severity="critical")
    globex = IncidentFactory(company=company_b, title="cpu_high on globex-web", severity="high")
    AlertFactory(
        incident=acme, severity="critical", message="acme disk full", signature="disk_full"
    )
    AlertFactory(
        incident=acme, severity="critical", message="acme disk full again", signature="disk_full"
    )
    AlertFactory(incident=globex, severity="high", message="globex cpu", signature="cpu_high")
    return acme, globex


@pytest.mark.parametrize(
    ("who", "sees_acme", "sees_globex"),
    [("msp_admin", True, True), ("technician_a", True, False), ("technician_b", False, True)],
)
def test_dashboard_is_scoped_to_the_viewer(request, client, data, who, sees_acme, sees_globex):
    client.force_login(request.getfixturevalue(who))
    body = client.get(reverse("home")).content.decode()
    assert ("disk_full on acme-db" in body) is sees_acme
    assert ("acme disk full" in body) is sees_acme
    assert ("cpu_high on globex-web" in body) is sees_globex
    assert ("globex cpu" in body) is sees_globex
    for name in ("dashboard:alerts", "dashboard:incidents"):
        partial = client.get(reverse(name)).content.decode()
        assert "<html" not in partial
        assert ("globex" in partial) is sees_globex


def test_anonymous_users_go_to_login(client):
    for url in (reverse("home"), reverse("dashboard:cards"), reverse("dashboard:alerts")):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_user_without_company_sees_a_clear_empty_state(client):
    client.force_login(UserFactory(role="Technician"))
    body = client.get(reverse("home")).content.decode()
    assert "not a member of any company" in body


def test_metric_cards_count_from_stored_data(client, msp_admin, company_a):
    client.force_login(msp_admin)
    open_critical = IncidentFactory(company=company_a, severity="critical")
    for _ in range(3):
        AlertFactory(incident=open_critical, severity="critical")
    AlertFactory(incident=open_critical, severity="critical", resolved_at=timezone.now())
    high = IncidentFactory(company=company_a, severity="high", status="in_progress")
    AlertFactory(incident=high, severity="high")
    closed = IncidentFactory(company=company_a, severity="critical", status="resolved")
    AlertFactory(incident=closed, severity="critical")
    pending = IncidentFactory(company=company_a, severity="critical", visible=False)
    AlertFactory(incident=pending, severity="critical")
    for _ in range(14):  # more alerts of the period, on the open incident
        AlertFactory(incident=high, severity="low")
    body = client.get(reverse("dashboard:cards")).content.decode()
    assert 'data-metric="critical">3<' in body
    assert 'data-metric="high">1<' in body
    assert 'data-metric="incidents">2<' in body
    # 21 firing alerts in the last 24 h, 3 shown incidents opened: (1 - 3/21) × 100 = 86 %
    assert 'data-metric="noise">86%<' in body


def test_noise_reduction_without_alerts_says_no_data(client, msp_admin, company_a):
    client.force_login(msp_admin)
    body = client.get(reverse("dashboard:cards")).content.decode()
    assert 'data-metric="noise">—<' in body
    assert "no alerts in the last 24h" in body


def test_period_changes_the_noise_window(client, msp_admin, company_a):
    client.force_login(msp_admin)
    old = timezone.now() - timedelta(days=3)
    incident = IncidentFactory(company=company_a, first_alert_at=old, last_alert_at=old)
    for _ in range(4):
        AlertFactory(incident=incident, event_time=old)
    assert 'data-metric="noise">—<' in client.get(reverse("dashboard:cards")).content.decode()
    week = client.get(reverse("dashboard:cards"), {"period": "7d"}).content.decode()
    assert 'data-metric="noise">75%<' in week


def test_alert_filters(client, msp_admin, data):
    client.force_login(msp_admin)
    high_only = client.get(reverse("dashboard:alerts"), {"severity": "high"}).content.decode()
    assert "globex cpu" in high_only and "acme disk full" not in high_only
    search = client.get(reverse("dashboard:alerts"), {"q": "disk"}).content.decode()
    assert "acme disk full" in search and "globex cpu" not in search
    nothing = client.get(reverse("dashboard:alerts"), {"q": "nothing-matches"}).content.decode()
    assert "No alerts match these filters." in nothing


def test_incident_status_filter(client, msp_admin, company_a):
    client.force_login(msp_admin)
    IncidentFactory(company=company_a, title="still open")
    IncidentFactory(company=company_a, title="all done", status="resolved")
    default = client.get(reverse("dashboard:incidents")).content.decode()
    assert "still open" in default and "all done" not in default
    resolved = client.get(reverse("dashboard:incidents"), {"status": "resolved"}).content.decode()
    assert "all done" in resolved and "still open" not in resolved


def test_company_switcher_narrows_the_view(client, data, company_a, company_b):
    gina = UserFactory(role="Technician", companies=[company_a, company_b])
    client.force_login(gina)
    page = client.get(reverse("home")).content.decode()
    assert "All companies" in page and "acme disk full" in page and "globex cpu" in page
    response = client.post(
        reverse("accounts:switch_company"), {"company": company_b.slug, "next": "/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get(reverse("home")).content.decode()
    assert "globex cpu" in page and "acme disk full" not in page
    client.post(reverse("accounts:switch_company"), {"company": "all"})
    assert "acme disk full" in client.get(reverse("home")).content.decode()


def test_switching_to_a_company_you_cannot_see_does_nothing(client, technician_a, company_b, data):
    client.force_login(technician_a)
    client.post(reverse("accounts:switch_company"), {"company": company_b.slug})
    body = client.get(reverse("home")).content.decode()
    assert "globex cpu" not in body and "acme disk full" in body


def test_switcher_refuses_to_redirect_off_site(client, technician_a):
    client.force_login(technician_a)
    response = client.post(
        reverse("accounts:switch_company"), {"company": "all", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_dashboard_queries_do_not_grow_with_rows(
    client, msp_admin, company_a, company_b, django_assert_max_num_queries
):
    client.force_login(msp_admin)
    for company in (company_a, company_b):
        for _ in range(15):
            incident = IncidentFactory(company=company)
            AlertFactory(incident=incident)
            AlertFactory(incident=incident)
    with django_assert_max_num_queries(16):
        assert client.get(reverse("home")).status_code == 200
    for name in ("dashboard:cards", "dashboard:alerts", "dashboard:incidents"):
        with django_assert_max_num_queries(10):
            assert client.get(reverse(name)).status_code == 200


def test_pages_of_alerts(client, msp_admin, company_a):
    client.force_login(msp_admin)
    incident = IncidentFactory(company=company_a)
    for i in range(30):
        AlertFactory(
            incident=incident,
            message=f"message number {i:02d}",
            event_time=timezone.now() - timedelta(minutes=i),
        )
    first = client.get(reverse("dashboard:alerts")).content.decode()
    assert "message number 00" in first and "message number 29" not in first and "Older →" in first
    older = re.search(r'href="\?acursor=([^"&]+)">Older', first).group(1)
    second = client.get(reverse("dashboard:alerts"), {"acursor": older}).content.decode()
    assert "message number 29" in second and "message number 24" not in second
    assert "Older →" not in second and "← Newer" in second


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("srv-db-01", True),  # host
        ("zabbix", True),  # tool
        ("team", True),  # label key
        ("storage", True),  # label value
        ("DISK_FULL", True),  # signature, any case
        ("elsewhere", False),
    ],
)
def test_alert_search_covers_host_tool_and_labels(client, technician_a, company_a, q, found):
    incident = IncidentFactory(company=company_a, asset_name="srv-db-01", signature="disk_full")
    AlertFactory(
        incident=incident,
        signature="disk_full",
        message="volume almost full",
        tool_source="Zabbix",
        labels={"team": "storage"},
    )
    client.force_login(technician_a)
    body = client.get(reverse("dashboard:alerts"), {"q": q}).content.decode()
    assert ("volume almost full" in body) is found


def test_alert_search_by_incident_number(client, technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    AlertFactory(incident=incident, message="in the incident")
    AlertFactory(company=company_a, message="not in it")
    client.force_login(technician_a)
    body = client.get(reverse("dashboard:alerts"), {"q": f"#{incident.pk}"}).content.decode()
    assert "in the incident" in body and "not in it" not in body


def test_live_regions_refetch_with_their_page_and_every_filter(client, msp_admin, company_a):
    """An older page stays shown on a live update, and the address bar keeps the state."""
    client.force_login(msp_admin)
    state = {
        "period": "7d",
        "severity": "high",
        "q": "cpu",
        "acursor": "o1764633600000000_42",
        "status": "",
        "ipage": "3",
    }
    page = client.get(reverse("home"), state).content.decode()
    query = (
        "period=7d&amp;severity=high&amp;q=cpu&amp;acursor=o1764633600000000_42"
        "&amp;status=&amp;ipage=3"
    )
    for name in ("dashboard:cards", "dashboard:alerts", "dashboard:incidents"):
        assert f'hx-get="{reverse(name)}?{query}"' in page
    assert 'id="keep-apage" name="acursor" value="o1764633600000000_42"' in page
    response = client.get(reverse("dashboard:alerts"), state)
    assert response["HX-Replace-Url"] == (
        "/?period=7d&severity=high&q=cpu&acursor=o1764633600000000_42&status=&ipage=3"
    )
    assert f'hx-get="{reverse("dashboard:alerts")}?{query}"' in response.content.decode()


def test_pager_links_keep_the_other_lists_state(client, msp_admin, company_a):
    incident = IncidentFactory(company=company_a)
    for _ in range(30):
        AlertFactory(incident=incident)
    client.force_login(msp_admin)
    body = client.get(reverse("dashboard:alerts"), {"status": "resolved", "ipage": "2"})
    assert re.search(
        r'href="\?status=resolved&amp;ipage=2&amp;acursor=o\d+_\d+">Older', body.content.decode()
    )
    first = client.get(reverse("dashboard:alerts"))
    assert first["HX-Replace-Url"] == "/"


def test_the_dashboards_incident_list_searches_too(client, technician_a, company_a):
    IncidentFactory(company=company_a, asset_name="srv-db-01", title="disk_full on srv-db-01")
    IncidentFactory(company=company_a, asset_name="srv-web-02", title="http_5xx on srv-web-02")
    client.force_login(technician_a)
    body = client.get(reverse("dashboard:incidents"), {"iq": "srv-db-01"}).content.decode()
    assert "disk_full on srv-db-01" in body and "http_5xx" not in body
    everything = client.get(reverse("dashboard:incidents"), {"status": "", "iq": "srv"})
    assert "http_5xx on srv-web-02" in everything.content.decode()
    nothing = client.get(reverse("dashboard:incidents"), {"iq": "nope"}).content.decode()
    assert "No incidents match this filter." in nothing
