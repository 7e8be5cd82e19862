"""Notifications leave the browser: email to a real SMTP server, Slack, Teams and a signed
webhook to real HTTP receivers; retries, failures, the rate cap and digests, quiet hours,
tenant scoping. Every test runs notify() as the incident code does and lets the after-commit
fan-out run (Celery tasks in-process)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time

import pytest
from django.utils import timezone

from apps.accounts.models import Membership
from apps.common import crypto
from apps.notifications import delivery
from apps.notifications.models import Channel, Delivery, DeliveryStatus, Kind, Notification
from apps.notifications.tasks import flush_digests, send_delivery
from tests.incidents.factories import IncidentFactory
from tests.notifications.helpers import add_channel, page

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def run_commit(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def incident_of(company, **kw):
    kw.setdefault("severity", "critical")
    return IncidentFactory(company=company, **kw)


def test_email_reaches_smtp_with_ack_link_and_updates_thread(
    smtp, technician_a, company_a, run_commit
):
    add_channel(technician_a, "email", "tech@acme.example")
    incident = incident_of(company_a, title="Disk full on srv-01")
    run_commit(page, [technician_a], incident)
    run_commit(
        page, [technician_a], incident, kind=Kind.ASSIGNMENT, title="Assigned to you: Disk full"
    )

    first, update = smtp.mails()
    assert first.subject == "Critical: Disk full on srv-01"
    assert first.to == "tech@acme.example"
    ack = f"https://aw.example.test/ack/{incident.pk}/{technician_a.pk}/"
    assert ack in first.links
    assert f"https://aw.example.test/incidents/{incident.pk}/" in first.links
    thread = first.message["Message-ID"]
    assert thread.startswith(f"<incident-{incident.pk}.")
    assert update.subject == "Re: Assigned to you: Disk full"
    assert update.message["In-Reply-To"] == thread
    assert update.message["References"] == thread
    assert update.message["Message-ID"] != thread
    html = first.message.get_body(preferencelist=("html",)).get_content()
    assert f'href="{ack}"' in html
    rows = list(Delivery.objects.order_by("id"))
    assert [(r.status, r.is_update, r.attempts) for r in rows] == [
        ("sent", False, 1),
        ("sent", True, 1),
    ]


def test_slack_gets_block_kit_with_buttons(receiver, technician_a, company_a, run_commit):
    slack = receiver("/services/T000/B000/XXXX")
    add_channel(technician_a, "slack", slack.url)
    incident = incident_of(company_a, title="API down")
    run_commit(page, [technician_a], incident)

    (request,) = slack.requests
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json()
    assert payload["text"] == "Critical: API down"
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["section", "context", "actions"]
    buttons = {b["text"]["text"]: b["url"] for b in payload["blocks"][2]["elements"]}
    assert buttons == {
        "Acknowledge": f"https://aw.example.test/ack/{incident.pk}/{technician_a.pk}/",
        "Open": f"https://aw.example.test/incidents/{incident.pk}/",
    }
    assert all(b["type"] == "button" for b in payload["blocks"][2]["elements"])


def test_teams_gets_an_adaptive_card(receiver, technician_a, company_a, run_commit):
    teams = receiver("/workflows/abc")
    add_channel(technician_a, "teams", teams.url)
    incident = incident_of(company_a, title="VPN flapping")
    run_commit(page, [technician_a], incident)

    payload = teams.requests[0].json()
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] == "1.4"
    assert card["body"][0] == {
        "type": "TextBlock",
        "text": "Critical: VPN flapping",
        "weight": "Bolder",
        "size": "Medium",
        "wrap": True,
    }
    assert [(a["type"], a["title"]) for a in card["actions"]] == [
        ("Action.OpenUrl", "Acknowledge"),
        ("Action.OpenUrl", "Open"),
    ]


def test_webhook_is_signed_like_our_inbound_webhooks(receiver, technician_a, company_a, run_commit):
    hook = receiver("/customer/hook")
    channel, secret = add_channel(technician_a, "webhook", hook.url)
    assert secret and secret not in channel.secret_encrypted
    assert crypto.decrypt(channel.secret_encrypted) == secret
    incident = incident_of(company_a, title="DB replica lag")
    run_commit(page, [technician_a], incident)

    (request,) = hook.requests
    timestamp = request.headers["X-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["X-Signature"], f"sha256={expected}")
    payload = request.json()
    assert payload["event"] == "critical_alert"
    assert payload["incident_id"] == incident.pk
    assert payload["company"] == "Acme Corp"
    assert payload["severity"] == "critical"
    assert payload["ack_url"].endswith(f"/ack/{incident.pk}/{technician_a.pk}/")
    assert request.headers["X-Delivery-ID"] == str(Delivery.objects.get().pk)
    # A tampered body does not verify with the secret.
    forged = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body + b" ", hashlib.sha256
    )
    assert forged.hexdigest() != expected


def test_a_500_is_retried_then_sent(receiver, technician_a, company_a, run_commit):
    hook = receiver(statuses=[500])
    add_channel(technician_a, "slack", hook.url)
    run_commit(page, [technician_a], incident_of(company_a))

    assert len(hook.requests) == 2
    row = Delivery.objects.get()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")


def test_a_task_run_again_after_sending_sends_nothing(
    receiver, technician_a, company_a, run_commit
):
    hook = receiver()
    add_channel(technician_a, "webhook", hook.url)
    run_commit(page, [technician_a], incident_of(company_a))
    row = Delivery.objects.get()
    send_delivery.delay(row.pk)
    send_delivery.delay(row.pk)
    assert len(hook.requests) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_unreachable_smtp_fails_the_row_and_flags_the_owner(
    settings, technician_a, company_a, run_commit
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 1  # nothing listens there
    channel, _ = add_channel(technician_a, "email", "tech@acme.example", name="My inbox")
    run_commit(page, [technician_a], incident_of(company_a))

    row = Delivery.objects.get()
    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == 3
    assert row.last_error == "SMTP server 127.0.0.1:1 refused the connection."
    channel.refresh_from_db()
    assert channel.failing_since is not None
    assert channel.last_error == row.last_error
    flag = Notification.objects.get(user=technician_a, kind=Kind.CHANNEL_FAILED)
    assert flag.title == "Notification channel failing: My inbox"
    assert "refused the connection" in flag.body


def test_a_storm_sends_the_cap_then_one_digest(smtp, technician_a, company_a, run_commit, settings):
    settings.NOTIFY_RATE_LIMIT = 5
    add_channel(technician_a, "email", "tech@acme.example")
    incidents = [incident_of(company_a, title=f"Storm {i}") for i in range(200)]
    for incident in incidents:
        run_commit(page, [technician_a], incident)

    assert len(smtp.mails()) == 5
    assert Delivery.objects.filter(status="held").count() == 195
    # Before the window has passed nothing more goes out.
    assert delivery.flush_digests() == []
    later = timezone.now() + dt.timedelta(seconds=301)
    (digest_id,) = delivery.flush_digests(now=later)
    send_delivery.delay(digest_id)

    mails = smtp.mails()
    assert len(mails) == 6
    digest = mails[-1]
    assert digest.subject.startswith("195 more incidents for Acme Corp in the last ")
    assert f"https://aw.example.test/incidents/{incidents[-1].pk}/" in digest.links
    assert Delivery.objects.filter(digest_id=digest_id).count() == 195
    # The digest is sent once: a second sweep finds nothing held.
    assert delivery.flush_digests(now=later) == []
    flush_digests.delay()
    assert len(smtp.mails()) == 6


def test_slack_updates_of_an_incident_are_grouped_not_resent(
    receiver, technician_a, company_a, run_commit
):
    slack = receiver()
    add_channel(technician_a, "slack", slack.url)
    incident = incident_of(company_a)
    for _ in range(3):
        run_commit(page, [technician_a], incident)
    assert len(slack.requests) == 1
    assert Delivery.objects.filter(status="held").count() == 2


def _quiet_now_for(user_zone: str) -> tuple[dt.time, dt.time]:
    """Quiet hours around the current time in ``user_zone``."""
    import zoneinfo

    local = timezone.now().astimezone(zoneinfo.ZoneInfo(user_zone))
    start = (local - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    return start, end


@pytest.mark.parametrize(
    ("severity", "override", "sent"),
    [("high", True, False), ("critical", True, True), ("critical", False, False)],
)
def test_quiet_hours_in_the_users_zone(
    receiver, technician_a, company_a, run_commit, severity, override, sent
):
    technician_a.time_zone = "Pacific/Auckland"
    technician_a.save()
    start, end = _quiet_now_for("Pacific/Auckland")
    hook = receiver()
    add_channel(
        technician_a,
        "slack",
        hook.url,
        quiet_start=start,
        quiet_end=end,
        critical_overrides_quiet=override,
    )
    run_commit(page, [technician_a], incident_of(company_a, severity=severity))
    assert len(hook.requests) == (1 if sent else 0)
    row = Delivery.objects.get()
    assert row.status == ("sent" if sent else "held")


def test_what_quiet_hours_held_goes_out_in_one_digest_when_they_end(
    smtp, technician_a, company_a, run_commit
):
    """Nothing is lost to quiet hours: the night's messages wait, the digest does not go out
    while they last, and one message lists them all once they are over."""
    start, end = _quiet_now_for("UTC")
    add_channel(technician_a, "email", "tech@acme.example", quiet_start=start, quiet_end=end)
    incidents = [incident_of(company_a, severity="high", title=f"Disk {n}") for n in range(3)]
    for incident in incidents:
        run_commit(page, [technician_a], incident)
    assert smtp.mails() == []
    assert Delivery.objects.filter(status="held").count() == 3

    assert delivery.flush_digests(now=timezone.now() + dt.timedelta(minutes=10)) == []
    (digest_id,) = delivery.flush_digests(now=timezone.now() + dt.timedelta(minutes=75))
    send_delivery.delay(digest_id)

    (digest,) = smtp.mails()
    assert digest.subject.startswith("3 more incidents for Acme Corp in the last ")
    assert "3 messages: 3 held during the channel's quiet hours." in digest.text
    for incident in incidents:
        assert f"https://aw.example.test/incidents/{incident.pk}/" in digest.links


def test_quiet_hours_elsewhere_in_the_day_do_not_hold(
    receiver, technician_a, company_a, run_commit
):
    start, end = _quiet_now_for("UTC")
    hook = receiver()
    # The same hours, shifted 12 h away from now.
    shift = lambda t: dt.time((t.hour + 12) % 24, t.minute)  # noqa: E731
    add_channel(technician_a, "slack", hook.url, quiet_start=shift(start), quiet_end=shift(end))
    run_commit(page, [technician_a], incident_of(company_a, severity="high"))
    assert len(hook.requests) == 1


def test_filters_severity_kind_and_company(
    receiver, technician_a, company_a, company_b, run_commit
):
    Membership.objects.create(user=technician_a, company=company_b)
    hook = receiver()
    add_channel(
        technician_a,
        "slack",
        hook.url,
        min_severity="critical",
        kinds=["assignment"],
        companies=[company_a],
    )
    run_commit(page, [technician_a], incident_of(company_a, severity="high"), kind=Kind.ASSIGNMENT)
    run_commit(page, [technician_a], incident_of(company_a), kind=Kind.CRITICAL_ALERT)
    run_commit(page, [technician_a], incident_of(company_b), kind=Kind.ASSIGNMENT)
    assert hook.requests == []
    run_commit(page, [technician_a], incident_of(company_a), kind=Kind.ASSIGNMENT)
    assert len(hook.requests) == 1


def test_company_channel_posts_once_per_incident_and_only_its_company(
    receiver, company_admin_a, technician_a, technician_b, company_a, company_b, run_commit
):
    hook = receiver()
    add_channel(company_admin_a, "slack", hook.url, company=company_a, min_severity="critical")
    run_commit(page, [technician_a, company_admin_a], incident_of(company_a, title="Acme down"))
    run_commit(page, [technician_b], incident_of(company_b, title="Globex down"))
    run_commit(page, [technician_a], incident_of(company_a, severity="high", title="Acme slow"))
    assert [r.json()["text"] for r in hook.requests] == ["Critical: Acme down"]
    payload_buttons = hook.requests[0].json()["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in payload_buttons] == ["Open"]


def test_a_globex_user_never_receives_acme_incidents(
    receiver, technician_b, technician_a, company_a, company_b, run_commit
):
    hook = receiver()
    add_channel(technician_b, "slack", hook.url, companies=[company_a, company_b])
    # Even a caller that wrongly lists the Globex technician for an Acme incident.
    run_commit(page, [technician_b, technician_a], incident_of(company_a))
    assert hook.requests == []
    assert not Delivery.objects.filter(channel__owner=technician_b).exists()


def test_membership_removed_after_the_channel_was_made(
    receiver, technician_a, company_a, run_commit
):
    hook = receiver()
    add_channel(technician_a, "slack", hook.url, companies=[company_a])
    run_commit(page, [technician_a], incident_of(company_a))
    assert len(hook.requests) == 1
    Membership.objects.filter(user=technician_a, company=company_a).delete()
    technician_a = type(technician_a).objects.get(pk=technician_a.pk)
    run_commit(page, [technician_a], incident_of(company_a))
    assert len(hook.requests) == 1


def test_membership_removed_while_a_row_waits_to_be_sent(receiver, technician_a, company_a):
    """A row queued before the membership went is not sent afterwards."""
    hook = receiver()
    channel, _ = add_channel(technician_a, "slack", hook.url)
    incident = incident_of(company_a)
    row = Delivery.objects.create(
        channel=channel,
        recipient=technician_a,
        company=company_a,
        incident=incident,
        kind="critical_alert",
        title="queued earlier",
        url="/incidents/1/",
    )
    Membership.objects.filter(user=technician_a, company=company_a).delete()
    send_delivery.delay(row.pk)
    row.refresh_from_db()
    assert row.status == "suppressed"
    assert hook.requests == []


def test_disabled_channel_sends_nothing(receiver, technician_a, company_a, run_commit):
    hook = receiver()
    channel, _ = add_channel(technician_a, "slack", hook.url)
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    run_commit(page, [technician_a], incident_of(company_a))
    assert hook.requests == []


def test_targets_are_encrypted_at_rest(technician_a):
    url = "https://hooks.slack.com/services/T000/B000/SECRETTOKEN1234"
    channel, _ = add_channel(technician_a, "slack", url)
    stored = Channel.objects.values_list("target_encrypted", "target_hint").get(pk=channel.pk)
    assert "SECRETTOKEN" not in stored[0] and "SECRETTOKEN" not in stored[1]
    assert stored[1] == "https://hooks.slack.com/…1234"
    assert crypto.decrypt(stored[0]) == url


def test_slack_update_after_the_window_is_a_message_of_its_own(
    receiver, technician_a, company_a, run_commit
):
    """An escalation step 10 minutes later pages again instead of waiting for a digest."""
    slack = receiver()
    add_channel(technician_a, "slack", slack.url)
    incident = incident_of(company_a)
    run_commit(page, [technician_a], incident)
    Delivery.objects.update(created_at=timezone.now() - dt.timedelta(minutes=10))
    run_commit(page, [technician_a], incident, kind=Kind.ASSIGNMENT, title="Still open")
    assert [r.json()["text"] for r in slack.requests][-1] == "Still open"
    assert Delivery.objects.filter(status="sent", is_update=True).count() == 1


def test_held_rows_of_a_switched_off_channel_are_not_digested(
    receiver, technician_a, company_a, run_commit, settings
):
    settings.NOTIFY_RATE_LIMIT = 1
    slack = receiver()
    channel, _ = add_channel(technician_a, "slack", slack.url)
    for _ in range(3):
        run_commit(page, [technician_a], incident_of(company_a))
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    later = timezone.now() + dt.timedelta(seconds=301)
    assert delivery.flush_digests(now=later) == []
    assert Delivery.objects.filter(status="suppressed").count() == 2
    assert len(slack.requests) == 1


def test_a_channel_whose_key_was_lost_fails_with_a_clear_error(
    receiver, technician_a, company_a, run_commit
):
    hook = receiver()
    channel, _ = add_channel(technician_a, "webhook", hook.url)
    from cryptography.fernet import Fernet

    Channel.objects.filter(pk=channel.pk).update(
        target_encrypted=Fernet(Fernet.generate_key()).encrypt(b"https://x.example/").decode()
    )
    run_commit(page, [technician_a], incident_of(company_a))
    row = Delivery.objects.get(is_test=False, kind="critical_alert")
    assert row.status == "failed"
    assert "cannot be decrypted" in row.last_error
    assert hook.requests == []


def test_a_row_whose_task_was_lost_is_sent_by_the_sweep(receiver, technician_a, company_a):
    """A worker killed mid-send leaves the row queued (its transaction rolled back); the beat
    sweep sends it again once it has been untouched for five minutes, and only once."""
    hook = receiver()
    channel, _ = add_channel(technician_a, "webhook", hook.url)
    row = Delivery.objects.create(
        channel=channel,
        recipient=technician_a,
        company=company_a,
        kind="critical_alert",
        title="lost",
        url="/incidents/1/",
    )
    flush_digests.delay()
    assert hook.requests == []
    Delivery.objects.filter(pk=row.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=6))
    flush_digests.delay()
    flush_digests.delay()
    assert len(hook.requests) == 1
    row.refresh_from_db()
    assert row.status == "sent"


@pytest.mark.parametrize("kind", ["slack", "teams", "webhook"])
def test_digest_payloads_link_every_held_incident(
    receiver, technician_a, company_a, run_commit, settings, kind
):
    settings.NOTIFY_RATE_LIMIT = 2
    hook = receiver()
    add_channel(technician_a, kind, hook.url)
    incidents = [incident_of(company_a, title=f"Storm {i}") for i in range(6)]
    for incident in incidents:
        run_commit(page, [technician_a], incident)
    assert len(hook.requests) == 2
    for digest_id in delivery.flush_digests(now=timezone.now() + dt.timedelta(seconds=301)):
        send_delivery.delay(digest_id)
    assert len(hook.requests) == 3
    payload = hook.requests[-1].json()
    links = [f"https://aw.example.test/incidents/{i.pk}/" for i in incidents[2:]]
    title = "4 more incidents for Acme Corp in the last 5 min"
    if kind == "slack":
        assert payload["text"] == title
        assert payload["blocks"][1]["text"]["text"].splitlines() == [
            f"• <{link}|Critical: Storm {n}>" for n, link in enumerate(links, start=2)
        ]
    elif kind == "teams":
        card = payload["attachments"][0]["content"]
        assert card["body"][0]["text"] == title
        assert [b["text"] for b in card["body"][1:]] == [
            f"[Critical: Storm {n}]({link})" for n, link in enumerate(links, start=2)
        ]
    else:
        assert payload["event"] == "digest"
        assert payload["title"] == title
        assert [item["url"] for item in payload["items"]] == links


def test_a_failing_company_channel_is_flagged_to_its_admin_once(
    receiver, company_admin_a, technician_a, company_a, run_commit
):
    hook = receiver(statuses=[500] * 6)
    channel, _ = add_channel(
        company_admin_a, "teams", hook.url, name="#acme-ops", company=company_a
    )
    run_commit(page, [technician_a], incident_of(company_a))
    run_commit(page, [technician_a], incident_of(company_a))
    assert len(hook.requests) == 6  # 3 attempts each
    assert set(Delivery.objects.values_list("status", flat=True)) == {"failed"}
    channel.refresh_from_db()
    assert channel.failing_since is not None
    assert "answered HTTP 500" in channel.last_error
    flags = Notification.objects.filter(kind=Kind.CHANNEL_FAILED)
    assert [(n.user, n.title) for n in flags] == [
        (company_admin_a, "Notification channel failing: #acme-ops")
    ]
    # The next message that goes through clears the flag.
    run_commit(page, [technician_a], incident_of(company_a))
    channel.refresh_from_db()
    assert channel.failing_since is None and channel.last_error == ""
