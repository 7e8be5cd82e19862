"""The KPI page in a real browser, over a week of alerts posted to the webhook and
correlated by the worker: the cards and the SVG charts render."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from apps.tenants.services import api_key_regenerate
from tests.browser import login, post_alert, screenshot


def post_a_week_of_alerts(base_url: str, api_key: str) -> None:
    """Seven days, oldest first: each day the disk fills twice (one incident) and the tool
    reports it recovered 25 minutes later; on odd days and today the CPU is high too (an
    incident of its own, today's the last alert of all): 18 firing alerts, 11 incidents,
    7 resolved by the tool after 25 minutes."""
    now = timezone.now()
    for day in range(6, -1, -1):
        start = now - timedelta(days=day, hours=2)
        posts = [
            {"timestamp": start},
            {"timestamp": start + timedelta(minutes=1), "message": "Disk / is 97% full"},
            {"timestamp": start + timedelta(minutes=25), "status": "resolved"},
        ]
        if day % 2 == 1 or day == 0:
            posts.append(
                {
                    "timestamp": start + timedelta(minutes=30),
                    "asset_name": "srv-app-02",
                    "signature": "cpu_high",
                    "severity": "medium",
                    "message": "CPU above 90% for 10 minutes",
                }
            )
        for fields in posts:
            fields["timestamp"] = fields["timestamp"].isoformat()
            status, answer = post_alert(base_url, api_key, **fields)
            assert status == 202, answer


def test_kpi_page_shows_the_cards_and_charts(server, page, company_a, company_admin_a):
    post_a_week_of_alerts(server.url, api_key_regenerate(company=company_a))

    login(page, company_admin_a)
    # The dashboard follows the worker live: wait until every alert is correlated.
    page.goto("/?period=7d")
    expect(page.locator("#cards")).to_contain_text("18 alerts → 11 incidents, last 7d")

    page.goto("/kpis/")
    expect(page.locator("h1")).to_have_text("KPIs · Acme Corp")
    expect(page.locator('[data-kpi="noise"] .value')).to_have_text("38.9%")
    expect(page.locator('[data-kpi="noise"]')).to_contain_text("18 alerts → 11 incidents")
    expect(page.locator('[data-kpi="self-healed"] .value')).to_have_text("0.0%")
    expect(page.locator('[data-kpi="mttr"] .value')).to_have_text("25.0 min")
    charts = page.locator("svg[data-chart]")
    expect(charts).to_have_count(2)
    expect(charts.first.locator("rect.bar")).not_to_have_count(0)
    expect(charts.last.locator("polyline.line")).not_to_have_count(0)
    screenshot(page, "kpis")
