"""Notification channels in the product as it runs: a technician adds a Slack channel on
the channels page, presses Test and sees the result (htmx); then an incident notified in
the app reaches their email (a real SMTP server) and Slack (a local receiver) through the
Celery worker, with the Open link, and the incident's delivery log records both."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from playwright.sync_api import expect

from apps.notifications.models import Delivery, Kind, Level
from apps.notifications.services import notify
from tests.browser import login, screenshot
from tests.incidents.factories import IncidentFactory
from tests.notifications.helpers import add_channel
from tests.notifications.servers import start_receiver, start_smtp


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    server = start_smtp(tmp_path_factory.mktemp("mail"))
    yield server
    server.controller.stop()


@pytest.fixture
def slack():
    receiver = start_receiver("/services/T1/B1/TOKEN")
    yield receiver
    receiver.stop()


@pytest.fixture
def process_env(smtp):
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "NOTIFY_ALLOW_HTTP_LOOPBACK": "true",
        "SITE_URL": "https://aw.example.test",
    }


def wait_for(check, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_add_a_slack_channel_and_test_it(page, technician_a, slack, settings):
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = True
    login(page, technician_a)
    page.goto("/notifications/channels/")
    page.select_option("#id_kind", "slack")
    page.fill("#id_name", "My Slack")
    page.fill("#id_target", "http://example.com/not-https")
    page.click("text=Add channel")
    expect(page.locator("#error-target")).to_contain_text("must use https://")
    page.fill("#id_target", slack.url)
    page.click("text=Add channel")
    row = page.locator(".channel-table tr", has_text="My Slack")
    expect(row).to_contain_text("/…OKEN")
    expect(page.locator("body")).not_to_contain_text("/services/T1/B1/TOKEN")
    row.get_by_role("button", name="Test").click()
    expect(row.locator(".test-result")).to_contain_text("Test message delivered.")
    assert slack.requests[0].json()["text"] == "Test message from Alert Whisperer"
    screenshot(page, "notification-channels")


def test_an_incident_reaches_email_and_slack_through_the_worker(
    server, technician_a, company_a, smtp, slack, settings
):
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = True
    add_channel(technician_a, "email", technician_a.email)
    add_channel(technician_a, "slack", slack.url)
    incident = IncidentFactory(company=company_a, severity="critical", title="Disk full srv-9")
    before = len(smtp.mails())

    def page_technician():
        # In a thread of its own: this one runs Playwright's event loop, where the bell's
        # push (async_to_sync) cannot run. Tasks go to the real worker.
        with transaction.atomic():
            notify(
                users=[technician_a],
                kind=Kind.CRITICAL_ALERT,
                level=Level.CRITICAL,
                title="Critical: Disk full srv-9",
                url=f"/incidents/{incident.pk}/",
                company=company_a,
                incident=incident,
                ack_url_for=lambda user: f"https://aw.example.test/ack/x/{user.pk}/",
            )
        connection.close()

    thread = threading.Thread(target=page_technician)
    thread.start()
    thread.join()
    mail = wait_for(lambda: smtp.mails()[before:])[0]
    assert mail.subject == "Critical: Disk full srv-9"
    assert f"https://aw.example.test/incidents/{incident.pk}/" in mail.links
    assert f"https://aw.example.test/ack/x/{technician_a.pk}/" in mail.links
    wait_for(lambda: slack.requests)
    wait_for(lambda: Delivery.objects.filter(incident=incident, status="sent").count() == 2)
