"""The KPI page and its CSV exports: scope (role and company switcher), the date range
form, "No data" on empty periods, the SVG charts, CSV contents and fixed query counts."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.kpis import charts, selectors
from apps.kpis.selectors import DayPoint
from apps.runbooks.models import RunbookExecution
from tests.factories import UserFactory
from tests.incidents.factories import AlertFactory, IncidentFactory
from tests.runbooks.factories import RunbookFactory

pytestmark = pytest.mark.django_db

RANGE = {"from": "2025-03-01", "to": "2025-03-10"}


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def resolved_incident(company, first, minutes, resolution, *, signature="disk_full"):
    return IncidentFactory(
        company=company,
        signature=signature,
        first_alert_at=first,
        last_alert_at=first,
        status="resolved",
        resolution=resolution,
        resolved_at=first + timedelta(minutes=minutes),
    )


def run(runbook, incident, status, minutes):
    started = incident.first_alert_at + timedelta(minutes=1)
    execution = RunbookExecution.objects.create(
        company=incident.company,
        incident=incident,
        runbook=runbook,
        status=status,
        started_at=started,
        finished_at=started + timedelta(minutes=minutes),
    )
    RunbookExecution.objects.filter(pk=execution.pk).update(created_at=started)


@pytest.fixture
def data(company_a, company_b):
    """Acme: 10 alerts, 4 incidents (1 self-healed) → 60 % noise reduction, 25 % healed.
    Globex: 4 alerts, 3 incidents (none healed) → 25 %, 0 %."""
    for minute in range(10):
        AlertFactory(company=company_a, event_time=at(2, 9, minute))
    resolved_incident(company_a, at(2, 10), 45, "manual")
    healed = resolved_incident(company_a, at(2, 11), 8, "self_healed")
    IncidentFactory(company=company_a, first_alert_at=at(4, 8), last_alert_at=at(4, 8))
    IncidentFactory(company=company_a, first_alert_at=at(4, 9), last_alert_at=at(4, 9))
    run(RunbookFactory(company=company_a, name="Disk cleanup"), healed, "success", 6)
    for minute in range(4):
        AlertFactory(company=company_b, event_time=at(3, 9, minute))
    for hour in (10, 11, 12):
        resolved_incident(company_b, at(3, hour), 30, "manual", signature="globex_only")


def summary(client, **params) -> dict[str, list[str]]:
    response = client.get(reverse("kpis:export", args=["summary"]), {**RANGE, **params})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    return {row[0]: row[1:] for row in rows[1:]}


def export(client, table: str) -> list[list[str]]:
    response = client.get(reverse("kpis:export", args=[table]), RANGE)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="kpis-{table}-20250301-20250310.csv"'
    )
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- The page ------------------------------------------------------------------------------


def test_page_shows_the_kpis_with_ratings(client, technician_a, data):
    client.force_login(technician_a)
    body = client.get(reverse("kpis:index"), RANGE).content.decode()
    assert "KPIs · Acme Corp" in body
    noise = body.split('data-kpi="noise"')[1].split('data-kpi="self-healed"')[0]
    assert "60.0%" in noise and "rating-excellent" in noise and "10 alerts → 4 incidents" in noise
    healed = body.split('data-kpi="self-healed"')[1].split('data-kpi="mttr"')[0]
    assert "25.0%" in healed and "rating-excellent" in healed
    assert 'data-mttr="manual">45.0 min<' in body
    assert 'data-mttr="automated">8.0 min<' in body
    assert 'data-mttr="reduction">82.2%<' in body
    assert "disk_full" in body and "Disk cleanup" in body
    assert "globex_only" not in body
    patch = body.split('data-kpi="patch"')[1].split("</div>\n    </div>")[0]
    assert "No data" in patch and "no synced instances" in patch
    assert 'href="/compliance/"' in patch


def test_patch_compliance_comes_from_the_compliance_selector(
    client, technician_a, company_a, data, monkeypatch
):
    calls = []

    def summary_of(*, company_ids):
        calls.append(company_ids)
        return {
            "instances": 48,
            "compliant": 42,
            "critical_missing": 8,
            "high_missing": 3,
            "percent": 87.5,
            "rating": "Needs improvement",
        }

    monkeypatch.setattr("apps.kpis.views.compliance_summary", summary_of)
    monkeypatch.setattr("apps.kpis.exports.compliance_summary", summary_of)
    client.force_login(technician_a)
    body = client.get(reverse("kpis:index"), RANGE).content.decode()
    patch = body.split('data-kpi="patch"')[1].split("</div>\n    </div>")[0]
    assert "87.5%" in patch and "rating-needs-improvement" in patch
    assert "42 of 48 instances, 8 critical patches missing" in patch
    figures = summary(client)
    assert figures["Patch compliance (latest sync)"] == ["87.50", "%", "Needs improvement"]
    assert figures["Instances compliant"] == ["42", "count", ""]
    assert calls == [[company_a.pk], [company_a.pk]]


@pytest.mark.parametrize(
    ("who", "alerts", "incidents", "noise"),
    [
        ("technician_a", "10", "4", "60.00"),
        ("company_admin_a", "10", "4", "60.00"),
        ("technician_b", "4", "3", "25.00"),
        ("msp_admin", "14", "7", "50.00"),
    ],
)
def test_every_role_sees_only_its_companies(request, client, data, who, alerts, incidents, noise):
    client.force_login(request.getfixturevalue(who))
    figures = summary(client)
    assert figures["Alerts"][0] == alerts
    assert figures["Incidents"][0] == incidents
    assert figures["Noise reduction"][0] == noise
    body = client.get(reverse("kpis:index"), RANGE).content.decode()
    assert ("globex_only" in body) is (who in ("technician_b", "msp_admin"))
    assert ("Disk cleanup" in body) is (who != "technician_b")


def test_company_switcher_narrows_the_kpis(client, msp_admin, data):
    client.force_login(msp_admin)
    assert summary(client)["Alerts"][0] == "14"
    client.post(reverse("accounts:switch_company"), {"company": "globex", "next": "/kpis/"})
    assert summary(client)["Alerts"][0] == "4"
    body = client.get(reverse("kpis:index"), RANGE).content.decode()
    assert "KPIs · Globex" in body and "Disk cleanup" not in body
    client.post(reverse("accounts:switch_company"), {"company": "all", "next": "/kpis/"})
    assert summary(client)["Alerts"][0] == "14"


def test_a_technician_cannot_switch_to_another_company(client, technician_a, data):
    client.force_login(technician_a)
    client.post(reverse("accounts:switch_company"), {"company": "globex", "next": "/kpis/"})
    assert summary(client)["Alerts"][0] == "10"


def test_empty_period_says_no_data(client, msp_admin, data):
    client.force_login(msp_admin)
    response = client.get(reverse("kpis:index"), {"from": "2024-01-01", "to": "2024-01-31"})
    assert response.status_code == 200
    body = response.content.decode()
    noise = body.split('data-kpi="noise"')[1].split('data-kpi="self-healed"')[0]
    assert "No data" in noise and "rating-no-data" in noise
    assert "no firing alerts in this period" in noise
    assert body.count("No data for this period.") == 2
    assert "<svg" not in body.split('<div id="kpi-body">')[1]
    assert "No incidents resolved in this period." in body
    assert "No runbook executions in this period." in body
    assert 'data-mttr="overall">No data<' in body
    figures = summary(client, **{"from": "2024-01-01", "to": "2024-01-31"})
    assert figures["Noise reduction"] == ["", "%", "No data"]
    assert figures["MTTR overall"] == ["", "min", ""]


def test_default_range_is_the_last_30_days(client, msp_admin, company_a):
    client.force_login(msp_admin)
    now = timezone.now()
    AlertFactory(company=company_a, event_time=now - timedelta(days=28))
    AlertFactory(company=company_a, event_time=now - timedelta(days=31))
    response = client.get(reverse("kpis:index"))
    today = timezone.localdate()
    assert response.context["period"].first_day == today - timedelta(days=29)
    assert response.context["period"].last_day == today
    assert response.context["report"].totals.alerts == 1
    body = response.content.decode()
    assert f'value="{today.isoformat()}"' in body
    assert 'aria-current="true">Last 30 days<' in body
    for days in (7, 30, 90):
        first = today - timedelta(days=days - 1)
        assert f"?from={first.isoformat()}&amp;to={today.isoformat()}" in body


def test_only_to_given_means_the_30_days_up_to_it(client, msp_admin, company_a):
    client.force_login(msp_admin)
    response = client.get(reverse("kpis:index"), {"to": "2025-03-31"})
    period = response.context["period"]
    assert (period.first_day, period.last_day) == (date(2025, 3, 2), date(2025, 3, 31))


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "2025-03-10", "to": "2025-03-01"}, "to", "“To” must be on or after “From”."),
        ({"from": "2025-13-45", "to": "2025-03-01"}, "from", "Enter a valid date."),
        ({"from": "yesterday"}, "from", "Enter a valid date."),
        ({"from": "2024-01-01", "to": "2025-03-01"}, "to", "at most 366 days"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from", "Pick a date between"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "to", "Pick a date between"),
    ],
)
def test_invalid_range_is_an_inline_error(client, msp_admin, data, params, field, message):
    client.force_login(msp_admin)
    response = client.get(reverse("kpis:index"), params)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    body = response.content.decode()
    assert message in body.replace("&ldquo;", "“").replace("&rdquo;", "”")
    assert f'id="kpi-{field}-error"' in body and 'aria-invalid="true"' in body
    assert "The date range is not valid" in body
    assert 'data-kpi="noise"' not in body
    export_response = client.get(reverse("kpis:export", args=["daily"]), params)
    assert export_response.status_code == 400
    assert "The date range is not valid" in export_response.content.decode()


def test_a_year_and_a_day_is_allowed(client, msp_admin, data):
    client.force_login(msp_admin)
    response = client.get(reverse("kpis:index"), {"from": "2024-03-10", "to": "2025-03-10"})
    assert response.context["period"].length == 366
    assert response.context["report"].totals.alerts == 14


def test_htmx_gets_the_body_only(client, msp_admin, data):
    client.force_login(msp_admin)
    body = client.get(reverse("kpis:index"), RANGE, headers={"HX-Request": "true"})
    partial = body.content.decode()
    assert "<html" not in partial and partial.lstrip().startswith('<div id="kpi-body">')
    assert 'data-kpi="noise"' in partial
    boosted = client.get(
        reverse("kpis:index"), RANGE, headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    assert "<html" in boosted.content.decode()


def test_anonymous_users_go_to_login(client):
    for url in (reverse("kpis:index"), reverse("kpis:export", args=["summary"])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_user_without_company_sees_an_empty_state(client):
    client.force_login(UserFactory(role="Technician"))
    body = client.get(reverse("kpis:index")).content.decode()
    assert "not a member of any company" in body
    assert 'data-kpi="noise"' not in body


def test_page_is_only_read(client, msp_admin):
    client.force_login(msp_admin)
    assert client.post(reverse("kpis:index")).status_code == 405


# --- Charts --------------------------------------------------------------------------------


def test_charts_are_inline_svg_with_title_desc_and_legend(client, msp_admin, data):
    client.force_login(msp_admin)
    page = client.get(reverse("kpis:index"), RANGE).content.decode()
    body = page.split('<div id="kpi-body">')[1]
    assert body.count('role="img"') == 2
    assert 'aria-labelledby="kpi-volume-title kpi-volume-desc"' in body
    assert '<title id="kpi-volume-title">Alerts and incidents per day</title>' in body
    assert "14 alerts and 7 incidents in all" in body
    assert "The busiest day was 2025-03-02 with 10 alerts." in body
    assert body.count('<rect class="bar"') == 2  # two days with alerts
    assert "<title>2025-03-02: 10 alerts</title>" in body
    assert "<title>2025-03-02: 50.0% self-healed</title>" in body
    for name in ("Firing alerts", "Incidents", "Noise reduction", "Self-healed"):
        assert f'data-series="{name}"' in body and f"</span>{name}</li>" in body
    assert "<script" not in body


def _days(values: list[tuple[int, int, int]]) -> list[DayPoint]:
    first = date(2025, 3, 1)
    return [DayPoint(first + timedelta(days=i), *v) for i, v in enumerate(values)]


def test_volume_chart_geometry():
    chart = charts.volume_chart(_days([(7, 2, 0), (0, 0, 0), (3, 1, 1)]))
    assert chart is not None
    # 7 at most: steps of 2 up to 8.
    assert [t.label for t in chart.y_ticks] == ["0", "2", "4", "6", "8"]
    alerts, incidents = chart.series
    assert [b.label for b in alerts.bars] == ["2025-03-01: 7 alerts", "2025-03-03: 3 alerts"]
    bottom, top = chart.plot_bottom, chart.plot_top
    first = alerts.bars[0]
    assert first.y + first.height == pytest.approx(bottom)
    assert first.height == pytest.approx((bottom - top) * 7 / 8, abs=0.02)
    assert len(incidents.dots) == 3 and len(incidents.lines) == 1
    assert all(chart.plot_left < d.x < chart.plot_right for d in incidents.dots)
    assert [t.label for t in chart.x_ticks] == ["Mar 1", "Mar 2", "Mar 3"]


def test_rate_chart_breaks_lines_on_days_without_data():
    chart = charts.rate_chart(_days([(10, 4, 1), (0, 0, 0), (5, 5, 0), (2, 1, 1)]))
    assert chart is not None
    noise, healed = chart.series
    assert len(noise.lines) == 2 and len(noise.dots) == 3  # day 2 has no alerts
    assert noise.dots[0].label == "2025-03-01: 60.0% noise reduction"
    assert [t.label for t in chart.y_ticks] == ["0%", "20%", "40%", "60%", "80%", "100%"]
    full = [d for d in healed.dots if d.label.endswith("100.0% self-healed")]
    assert full[0].y == pytest.approx(chart.plot_top)


def test_charts_without_data_are_none():
    quiet = _days([(0, 0, 0)] * 5)
    assert charts.volume_chart(quiet) is None
    assert charts.rate_chart(quiet) is None


def test_long_ranges_keep_few_day_labels():
    days = [DayPoint(date(2024, 12, 1) + timedelta(days=i), i % 5, i % 3, 0) for i in range(366)]
    chart = charts.volume_chart(days)
    assert chart is not None
    assert 1 < len(chart.x_ticks) <= charts.MAX_X_LABELS
    assert chart.x_ticks[0].label == "Dec 1 2024"


# --- CSV exports ---------------------------------------------------------------------------


def test_csv_exports_every_table(client, technician_a, data):
    client.force_login(technician_a)
    assert export(client, "summary") == [
        ["kpi", "value", "unit", "rating"],
        ["Alerts", "10", "count", ""],
        ["Incidents", "4", "count", ""],
        ["Noise reduction", "60.00", "%", "Excellent"],
        ["Self-healed incidents", "1", "count", ""],
        ["Self-healed", "25.00", "%", "Excellent"],
        ["Resolved incidents", "2", "count", ""],
        ["MTTR overall", "26.50", "min", ""],
        ["MTTR self-healed", "8.00", "min", ""],
        ["MTTR manual", "45.00", "min", ""],
        ["MTTR resolved by the monitoring tool", "", "min", ""],
        ["MTTR reduction by automation", "82.22", "%", ""],
        ["Time saved by runbooks (estimate)", "39.00", "min", ""],
        ["Patch compliance (latest sync)", "", "%", "No data"],
        ["Instances compliant", "0", "count", ""],
        ["Instances", "0", "count", ""],
    ]
    daily = export(client, "daily")
    assert daily[0] == [
        "date",
        "alerts",
        "incidents",
        "self_healed",
        "noise_reduction_pct",
        "self_healed_pct",
    ]
    assert len(daily) == 11
    assert daily[2] == ["2025-03-02", "10", "2", "1", "80.00", "50.00"]
    assert daily[4] == ["2025-03-04", "0", "2", "0", "", "0.00"]
    assert daily[5] == ["2025-03-05", "0", "0", "0", "", ""]
    assert export(client, "signatures") == [
        [
            "signature",
            "resolved",
            "mttr_min",
            "manual",
            "manual_mttr_min",
            "self_healed",
            "self_healed_mttr_min",
            "source",
            "source_mttr_min",
            "reduction_pct",
        ],
        ["disk_full", "2", "26.50", "1", "45.00", "1", "8.00", "0", "", "82.22"],
    ]
    assert export(client, "runbooks") == [
        [
            "runbook",
            "executions",
            "succeeded",
            "failed",
            "success_rate_pct",
            "avg_duration_min",
            "time_saved_min_estimate",
        ],
        ["Disk cleanup", "1", "1", "0", "100.00", "6.00", "39.00"],
    ]


def test_csv_is_safe_against_formula_injection(client, msp_admin, company_a):
    client.force_login(msp_admin)
    manual = resolved_incident(company_a, at(2, 10), 20, "manual", signature="=cmd|'/C calc'!A0")
    healed = resolved_incident(company_a, at(2, 11), 30, "self_healed", signature="+sum(1)")
    run(RunbookFactory(company=company_a, name='@HYPERLINK("http://x")'), healed, "success", 25)
    run(RunbookFactory(company=company_a, name="-2+3"), manual, "failed", 1)
    signatures = export(client, "signatures")
    assert [row[0] for row in signatures[1:]] == ["'+sum(1)", "'=cmd|'/C calc'!A0"]
    runbooks = export(client, "runbooks")
    assert sorted(row[0] for row in runbooks[1:]) == ["'-2+3", '\'@HYPERLINK("http://x")']
    # Numbers are never prefixed, negative ones included (the runbook is slower than
    # the manual fix: 20 − 25 min).
    saved = {row[0]: row[6] for row in runbooks[1:]}
    assert saved['\'@HYPERLINK("http://x")'] == "-5.00"


def test_unknown_table_is_404(client, msp_admin):
    client.force_login(msp_admin)
    assert client.get("/kpis/export/alerts.csv", RANGE).status_code == 404


# --- Query counts --------------------------------------------------------------------------


def _many(company, count: int) -> None:
    """``count`` alerts over ten days, an incident per two alerts, some resolved, healed."""
    runbook = RunbookFactory(company=company, name=f"Runbook {company.slug}")
    for n in range(count):
        AlertFactory(company=company, event_time=at(1 + n % 10, 8, n % 60))
    for n in range(count // 2):
        signature = f"sig_{n % 7}"
        if n % 3:
            healed = resolved_incident(
                company, at(1 + n % 10, 9), 5 + n % 20, "self_healed", signature=signature
            )
            run(runbook, healed, "success", 3)
        else:
            resolved_incident(company, at(1 + n % 10, 9), 40, "manual", signature=signature)


@pytest.mark.parametrize("who", ["msp_admin", "technician_a"])
def test_page_query_count_does_not_grow_with_data(
    request, client, django_assert_max_num_queries, django_assert_num_queries, company_a, who
):
    user = request.getfixturevalue(who)
    client.force_login(user)
    with django_assert_max_num_queries(13) as small:
        client.get(reverse("kpis:index"), RANGE)
    _many(company_a, 200)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(reverse("kpis:index"), RANGE)
    assert response.context["report"].totals.alerts == 200
    assert len(response.context["report"].runbooks) == 1


def test_export_query_counts_are_fixed(client, msp_admin, company_a, django_assert_num_queries):
    client.force_login(msp_admin)
    _many(company_a, 200)
    # Session, user, role, companies in view; then (UTC days: whole rollup buckets, no raw
    # edge) summary 3 + patch compliance, daily 1, signatures 1, runbooks 3.
    for table, queries in (("summary", 4), ("daily", 1), ("signatures", 1), ("runbooks", 3)):
        with django_assert_num_queries(4 + queries):
            client.get(reverse("kpis:export", args=[table]), RANGE)


def test_selector_report_is_three_queries(company_a, django_assert_num_queries):
    """Hourly buckets (days, totals, MTTR), daily signature buckets, runbooks."""
    _many(company_a, 200)
    period = selectors.Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 10), tz=UTC)
    with django_assert_num_queries(3):
        report = selectors.kpi_report(company_ids=[company_a.pk], period=period)
    assert (report.totals.alerts, report.totals.incidents) == (200, 100)
    assert len(report.signatures) == 7
