"""The alert list pages by keyset: walking "Older →" from the newest page, or "← Newer" from
the oldest, shows every alert the user may see exactly once, in order, ties on the event
time included; a forged cursor is a clear 400."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.alerts.models import Alert
from apps.common.keyset import OLDEST, BadCursor, keyset_paginate

pytestmark = pytest.mark.django_db

BASE = datetime(2025, 6, 1, tzinfo=UTC)


def _alerts(company, seconds: list[int]) -> None:
    Alert.objects.bulk_create(
        Alert(
            company=company,
            asset_name="web-1",
            signature="disk_full",
            severity="high",
            message=f"alert {n}",
            tool_source="prometheus",
            source="generic",
            status="firing",
            fingerprint="f",
            event_time=BASE + timedelta(seconds=s),
            received_at=BASE,
        )
        for n, s in enumerate(seconds)
    )


def _walk(queryset, start: str, follow: str, per_page: int) -> list[list[int]]:
    pages, cursor = [], start
    while True:
        page = keyset_paginate(queryset, cursor, time_field="event_time", per_page=per_page)
        pages.append([a.pk for a in page.rows])
        cursor = getattr(page, follow)
        if cursor is None:
            return pages


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    # Few distinct seconds: many alerts share an event time (a batch of one delivery).
    seconds=st.lists(st.integers(0, 8), max_size=40),
    per_page=st.integers(1, 7),
)
def test_walking_either_way_shows_every_alert_once_in_order(company_a, seconds, per_page):
    with transaction.atomic():
        _alerts(company_a, seconds)
        alerts = Alert.objects.filter(company=company_a)
        expected = list(alerts.order_by("-event_time", "-id").values_list("id", flat=True))

        down = _walk(alerts, "", "older", per_page)
        assert [pk for page in down for pk in page] == expected
        assert all(len(page) == per_page for page in down[:-1])

        up = _walk(alerts, OLDEST, "newer", per_page)
        assert [pk for page in reversed(up) for pk in page] == expected
        assert all(len(page) == per_page for page in up[:-1])
        transaction.set_rollback(True)


def test_pager_walks_the_users_alerts_only(client, technician_a, company_a, company_b):
    _alerts(company_a, list(range(60)))
    _alerts(company_b, list(range(60)))
    client.force_login(technician_a)
    seen, query = [], ""
    while True:
        body = client.get(f"{reverse('dashboard:alerts')}?{query}").content.decode()
        seen += re.findall(r"alert (\d+)</div>", body)
        older = re.search(r'href="\?([^"]*)">Older →', body)
        if older is None:
            break
        query = older.group(1).replace("&amp;", "&")
    assert seen == [str(n) for n in range(59, -1, -1)]  # company A's, newest first, once

    oldest = client.get(reverse("dashboard:alerts"), {"acursor": OLDEST}).content.decode()
    assert re.findall(r"alert (\d+)</div>", oldest)[-1] == "0"
    assert "Older →" not in oldest and "« Newest" in oldest and "← Newer" in oldest


@pytest.mark.parametrize("cursor", ["x12_3", "o12", "o99999999999999999999_1", "n-_1"])
def test_a_forged_cursor_is_a_clear_400(client, technician_a, cursor):
    client.force_login(technician_a)
    for url in (reverse("dashboard:alerts"), reverse("home")):
        response = client.get(url, {"acursor": cursor})
        assert response.status_code == 400
        assert "cursor" in response.content.decode() and "not valid" in response.content.decode()


def test_bad_cursor_names_itself():
    with pytest.raises(BadCursor, match="o12"):
        keyset_paginate(Alert.objects.none(), "o12", time_field="event_time")


def test_oldest_page_reads_by_keyset_not_offset(client, msp_admin, company_a):
    """The oldest page is one query on the alerts, without OFFSET."""
    _alerts(company_a, list(range(100)))
    client.force_login(msp_admin)
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("dashboard:alerts"), {"acursor": OLDEST})
    alert_queries = [q["sql"] for q in captured.captured_queries if '"alerts_alert"' in q["sql"]]
    listing = [sql for sql in alert_queries if "ORDER BY" in sql]
    assert len(listing) == 1 and "OFFSET" not in listing[0]
