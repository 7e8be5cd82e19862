"""What the delivery log guarantees: one send per row even when two workers run the same
task at once (the row lock), a bounded number of queries for the fan-out whatever the
number of channels' past deliveries, quiet hours that wrap midnight, and the admin's
delivery log for MSP admins only."""

from __future__ import annotations

import datetime as dt
import threading
import time
import zoneinfo

import pytest
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.notifications import delivery
from apps.notifications.models import Channel, Delivery
from tests.factories import PASSWORD
from tests.incidents.factories import IncidentFactory
from tests.notifications.helpers import add_channel, page


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_one_delivery_send_it_once(technician_a, company_a, settings):
    """The receiver answers slowly; two threads (two workers) run send_one for the same row
    at the same time: the second waits on the row lock and finds it sent."""
    from tests.notifications.servers import start_receiver

    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = True
    hook = start_receiver()
    original = hook.server.RequestHandlerClass.do_POST

    def slow(self):
        time.sleep(0.5)
        original(self)

    hook.server.RequestHandlerClass.do_POST = slow
    try:
        channel, _ = add_channel(technician_a, "webhook", hook.url)
        row = Delivery.objects.create(
            channel=channel,
            recipient=technician_a,
            company=company_a,
            kind="critical_alert",
            title="once",
            url="/incidents/1/",
        )
        outcomes = []

        def run():
            outcomes.append(delivery.send_one(row.pk).status)
            connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes == ["sent", "sent"]
        assert len(hook.requests) == 1
        row.refresh_from_db()
        assert row.attempts == 1
    finally:
        hook.stop()


@pytest.mark.django_db
def test_fan_out_queries_do_not_grow_with_history(
    technician_a,
    company_a,
    receiver,
    django_assert_max_num_queries,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.NOTIFY_RATE_LIMIT = 10**6
    hook = receiver()
    add_channel(technician_a, "slack", hook.url)
    add_channel(technician_a, "webhook", hook.url)

    def one():
        with django_capture_on_commit_callbacks(execute=True):
            page([technician_a], IncidentFactory(company=company_a))

    one()
    ids = [n.pk for n in page([technician_a], IncidentFactory(company=company_a))]
    for _ in range(20):
        one()
    # 2 channels: read notifications, incident, channels (+ companies), membership; per
    # channel a lock, an update check, the rate count and an insert (in a savepoint).
    with django_assert_max_num_queries(20):
        queued = delivery.fan_out(notification_ids=ids, incident_id=None, ack_urls={})
    assert len(queued) == 2


def _quiet_by_minutes(start: dt.time, end: dt.time, local: dt.time) -> bool:
    minutes = lambda t: t.hour * 60 + t.minute  # noqa: E731
    s, e, t = minutes(start), minutes(end), minutes(local)
    covered = set(range(s, e)) if s <= e else set(range(s, 24 * 60)) | set(range(0, e))
    return t in covered


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    at=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1)).map(
        lambda d: d.replace(second=0, microsecond=0, tzinfo=dt.UTC)
    ),
    zone=st.sampled_from(["UTC", "Europe/Oslo", "America/New_York", "Pacific/Auckland"]),
)
def test_quiet_hours_match_the_minutes_they_cover(start, end, at, zone):
    class Owner:
        time_zone = zone

    channel = Channel(quiet_start=start, quiet_end=end, owner_id=1)
    channel._state.fields_cache["owner"] = Owner()
    local = at.astimezone(zoneinfo.ZoneInfo(zone)).time()
    assert delivery._in_quiet_hours(channel, at) == _quiet_by_minutes(start, end, local)


@pytest.mark.django_db
def test_delivery_log_in_the_admin_for_msp_admins_only(client, msp_admin, technician_a, company_a):
    channel, _ = add_channel(technician_a, "slack", "https://hooks.slack.com/services/a/b/SECRET99")
    Delivery.objects.create(
        channel=channel,
        recipient=technician_a,
        company=company_a,
        kind="critical_alert",
        title="Critical: API down",
        status="failed",
        last_error="hooks.slack.com answered HTTP 500",
    )
    client.login(email=technician_a.email, password=PASSWORD)
    assert client.get("/admin/notifications/delivery/").status_code == 403
    client.login(email=msp_admin.email, password=PASSWORD)
    html = client.get("/admin/notifications/delivery/").content.decode()
    assert "Critical: API down" in html and "answered HTTP 500" in html
    html = client.get(f"/admin/notifications/channel/{channel.pk}/change/").content.decode()
    assert "SECRET99" not in html and "…ET99" in html
