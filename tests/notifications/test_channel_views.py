"""The channels page (/notifications/channels/): adding channels with clear errors, the
secret shown once, the Test button, switching and removing, for every role; the demo's
mail catcher page; the incident page's delivery card."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import reverse

from apps.notifications.models import Channel, Delivery
from tests.factories import PASSWORD
from tests.incidents.factories import IncidentFactory
from tests.notifications.helpers import add_channel

pytestmark = pytest.mark.django_db

URL = "/notifications/channels/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def form(**over):
    data = {
        "scope": "me",
        "kind": "slack",
        "name": "My Slack",
        "target": "https://hooks.slack.com/services/T1/B1/TOKENabcd",
        "min_severity": "high",
        "critical_overrides_quiet": "on",
    }
    data.update(over)
    return data


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/login" in response["Location"]
    assert client.post(URL, form()).status_code == 302
    assert not Channel.objects.exists()


@pytest.mark.parametrize("role", ["technician_a", "company_admin_a", "msp_admin"])
def test_every_role_adds_its_own_channel(client, request, role):
    user = request.getfixturevalue(role)
    login(client, user)
    assert client.get(URL).status_code == 200
    response = client.post(URL, form())
    assert response.status_code == 201
    channel = Channel.objects.get()
    assert (channel.owner, channel.company, channel.kind) == (user, None, "slack")
    assert "TOKENabcd" not in response.content.decode()
    assert "https://hooks.slack.com/…abcd" in response.content.decode()


def test_scope_choices_follow_the_role(
    client, technician_a, company_admin_a, msp_admin, company_a, company_b
):
    def scopes(user):
        login(client, user)
        return [c[0] for c in client.get(URL).context["form"].fields["scope"].choices]

    assert scopes(technician_a) == ["me"]
    assert scopes(company_admin_a) == ["me", str(company_a.pk)]
    assert scopes(msp_admin) == ["me", str(company_a.pk), str(company_b.pk)]


def test_company_admin_adds_a_company_channel_only_for_their_company(
    client, company_admin_a, company_a, company_b
):
    login(client, company_admin_a)
    response = client.post(URL, form(scope=str(company_b.pk)))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    response = client.post(URL, form(scope=str(company_a.pk), name="#acme-ops"))
    assert response.status_code == 201
    channel = Channel.objects.get()
    assert (channel.owner, channel.company) == (None, company_a)


def test_technician_cannot_add_a_company_channel(client, technician_a, company_a):
    login(client, technician_a)
    response = client.post(URL, form(scope=str(company_a.pk)))
    assert response.status_code == 400
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"target": "http://hooks.slack.com/services/x"}, "Slack URL must use https://"),
        ({"kind": "teams", "target": "ftp://example.com/x"}, "Microsoft Teams needs a full URL"),
        ({"kind": "webhook", "target": "not a url"}, "Webhook needs a full URL"),
        ({"kind": "email", "target": "alice@"}, "“alice@” is not a valid email address."),
        ({"kind": "slack", "target": ""}, "Enter an address."),
        ({"quiet_start": "22:00"}, "Give both ends of the quiet hours, or neither."),
        ({"kind": "pager"}, "Select a valid choice. pager is not one of the available choices."),
    ],
)
def test_bad_input_gets_a_clear_error(client, technician_a, over, message):
    login(client, technician_a)
    response = client.post(URL, form(**over))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Channel.objects.exists()


def test_http_to_loopback_only_when_allowed(client, technician_a, settings):
    login(client, technician_a)
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = False
    response = client.post(URL, form(target="http://127.0.0.1:9/hook"))
    assert response.status_code == 400
    assert "must use https://" in response.content.decode()
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = True
    assert client.post(URL, form(target="http://127.0.0.1:9/hook")).status_code == 201


def test_email_defaults_to_the_login_address(client, technician_a):
    login(client, technician_a)
    assert client.post(URL, form(kind="email", target="")).status_code == 201
    assert Channel.objects.get().target_hint == "t…@acme.example"


def test_webhook_secret_is_shown_once(client, technician_a):
    login(client, technician_a)
    response = client.post(URL, form(kind="webhook", target="https://example.com/hook"))
    secret = response.context["secret"]
    assert len(secret) >= 40
    assert secret in response.content.decode()
    assert secret not in client.get(URL).content.decode()


def test_test_button_sends_and_shows_the_result(client, technician_a, receiver):
    ok = receiver()
    channel, _ = add_channel(technician_a, "slack", ok.url, name="Good")
    login(client, technician_a)
    response = client.post(reverse("notifications:channel_test", args=[channel.pk]), **HTMX)
    assert response.status_code == 200
    assert "Test message delivered." in response.content.decode()
    assert ok.requests[0].json()["text"] == "Test message from Alert Whisperer"

    bad = receiver(statuses=[500, 500])
    broken, _ = add_channel(technician_a, "teams", bad.url, name="Broken")
    response = client.post(reverse("notifications:channel_test", args=[broken.pk]), **HTMX)
    assert response.status_code == 502
    assert "answered HTTP 500" in response.content.decode()
    assert len(bad.requests) == 1  # a test is tried once
    assert Delivery.objects.filter(is_test=True, status="failed").count() == 1
    # Without htmx: a redirect and a flash message.
    response = client.post(reverse("notifications:channel_test", args=[broken.pk]), follow=True)
    assert "Test message to “Broken” failed: 127.0.0.1" in response.content.decode()


def test_nobody_tests_switches_or_removes_a_channel_not_theirs(
    client, technician_a, technician_b, company_admin_a, company_a, receiver
):
    hook = receiver()
    mine, _ = add_channel(technician_a, "slack", hook.url)
    company, _ = add_channel(company_admin_a, "slack", hook.url, company=company_a)
    login(client, technician_b)
    for channel in (mine, company):
        for name in ("channel_test", "channel_toggle", "channel_delete"):
            assert (
                client.post(reverse(f"notifications:{name}", args=[channel.pk])).status_code == 404
            )
    login(client, technician_a)
    for name in ("channel_test", "channel_toggle", "channel_delete"):
        assert client.post(reverse(f"notifications:{name}", args=[company.pk])).status_code == 404
    assert hook.requests == []
    assert Channel.objects.count() == 2


def test_company_admin_and_msp_admin_manage_the_company_channel(
    client, company_admin_a, msp_admin, company_a, receiver
):
    hook = receiver()
    company, _ = add_channel(msp_admin, "slack", hook.url, company=company_a)
    login(client, company_admin_a)
    assert company.name in client.get(URL).content.decode()
    client.post(reverse("notifications:channel_toggle", args=[company.pk]))
    company.refresh_from_db()
    assert company.enabled is False
    login(client, msp_admin)
    client.post(reverse("notifications:channel_delete", args=[company.pk]))
    assert not Channel.objects.exists()


def test_get_only_pages_refuse_other_methods(client, technician_a, msp_admin):
    login(client, technician_a)
    channel, _ = add_channel(technician_a, "email", "tech@acme.example")
    assert client.get(reverse("notifications:channel_test", args=[channel.pk])).status_code == 405
    assert client.put(URL).status_code == 405


def test_failing_channel_shows_a_badge(client, technician_a):
    channel, _ = add_channel(technician_a, "email", "tech@acme.example")
    from django.utils import timezone

    Channel.objects.filter(pk=channel.pk).update(
        failing_since=timezone.now(), last_error="SMTP server 127.0.0.1:1 refused the connection."
    )
    login(client, technician_a)
    html = client.get(URL).content.decode()
    assert "Failing" in html and "refused the connection" in html


def test_mail_catcher_page_for_msp_admins_in_the_demo(
    client, msp_admin, technician_a, company_admin_a, settings, smtp
):
    from django.core import mail

    settings.MAIL_CATCHER_DIR = smtp.directory
    settings.DEBUG = True
    mail.send_mail(
        "Critical: Disk full", "Open: https://aw.example.test/incidents/5/", None, ["a@b.example"]
    )
    for user in (technician_a, company_admin_a):
        login(client, user)
        assert client.get("/notifications/mail/").status_code == 404
    assert "Caught mail (demo)" not in client.get("/notifications/").content.decode()
    login(client, msp_admin)
    assert "Caught mail (demo)" in client.get("/notifications/").content.decode()
    html = client.get("/notifications/mail/").content.decode()
    assert "Critical: Disk full" in html
    assert '<a href="https://aw.example.test/incidents/5/">' in html
    settings.DEBUG = False
    assert client.get("/notifications/mail/").status_code == 404


def test_incident_card_lists_deliveries_and_errors(technician_a, company_a):
    incident = IncidentFactory(company=company_a)
    channel, _ = add_channel(technician_a, "slack", "https://hooks.slack.com/services/a/b/cdef")
    Delivery.objects.create(
        channel=channel,
        recipient=technician_a,
        company=company_a,
        incident=incident,
        kind="critical_alert",
        title="x",
        status="failed",
        attempts=3,
        last_error="hooks.slack.com answered HTTP 500: oops",
    )
    html = Template("{% load notification_deliveries %}{% incident_deliveries incident %}").render(
        Context({"incident": incident})
    )
    assert "Failed" in html
    assert "Slack ch" in html and "for tech@acme.example" in html
    assert "hooks.slack.com answered HTTP 500: oops" in html
    assert "3 attempts" in html


def test_owner_edits_filters_and_keeps_or_replaces_the_address(client, technician_a, company_a):
    channel, _ = add_channel(technician_a, "slack", "https://hooks.slack.com/services/a/b/OLD1")
    login(client, technician_a)
    edit = reverse("notifications:channel_edit", args=[channel.pk])
    html = client.get(edit).content.decode()
    assert "Now https://hooks.slack.com/…OLD1" in html and "services/a/b/OLD1" not in html
    response = client.post(
        edit,
        {
            "name": "Renamed",
            "target": "",
            "min_severity": "critical",
            "kinds": ["assignment"],
            "companies": [company_a.pk],
            "quiet_start": "22:00",
            "quiet_end": "07:00",
        },
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.min_severity, channel.kinds) == (
        "Renamed",
        "critical",
        ["assignment"],
    )
    assert channel.target_hint.endswith("OLD1")
    assert [c.pk for c in channel.companies.all()] == [company_a.pk]
    assert channel.critical_overrides_quiet is False
    response = client.post(
        edit, {"name": "Renamed", "target": "http://evil.example/x", "min_severity": "low"}
    )
    assert response.status_code == 400
    assert "Slack URL must use https://" in response.content.decode()
    client.post(
        edit,
        {
            "name": "Renamed",
            "target": "https://hooks.slack.com/services/a/b/NEW2",
            "min_severity": "low",
        },
    )
    channel.refresh_from_db()
    assert channel.target_hint.endswith("NEW2")


def test_nobody_edits_a_channel_not_theirs(
    client, technician_a, technician_b, company_admin_a, company_a
):
    mine, _ = add_channel(technician_a, "slack", "https://hooks.slack.com/services/a/b/c")
    company, _ = add_channel(
        company_admin_a, "slack", "https://hooks.slack.com/x", company=company_a
    )
    login(client, technician_b)
    for channel in (mine, company):
        edit = reverse("notifications:channel_edit", args=[channel.pk])
        assert client.get(edit).status_code == 404
        assert client.post(edit, {"name": "x", "min_severity": "low"}).status_code == 404
    login(client, technician_a)
    assert client.get(reverse("notifications:channel_edit", args=[company.pk])).status_code == 404
    login(client, company_admin_a)
    assert client.get(reverse("notifications:channel_edit", args=[company.pk])).status_code == 200
