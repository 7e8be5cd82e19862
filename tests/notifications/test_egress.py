"""Server-side request forgery: a Slack, Teams or webhook channel never makes the server
post to itself, the cloud metadata service or the private network, whether the address is
typed in or a public-looking name resolves there at send time (DNS rebinding)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.common import crypto
from apps.notifications.channels import validate_target
from apps.notifications.egress import address_allowed
from apps.notifications.models import Delivery, DeliveryStatus
from tests.incidents.factories import IncidentFactory
from tests.notifications.helpers import add_channel, page

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "https://172.16.3.4:8443/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:10.1.2.3]/hook",
        "https://0.0.0.0/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://printer.local/hook",
        "https://localhost/hook",
    ],
)
def test_internal_addresses_are_refused_when_saved(url, settings):
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = False
    with pytest.raises(ValidationError) as refused:
        validate_target("webhook", url)
    assert "a private or internal address" in refused.value.messages[0]


def test_public_addresses_are_accepted(settings):
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = False
    for url in ("https://hooks.slack.com/services/T0/B0/x", "https://8.8.8.8/hook"):
        assert validate_target("slack", url) == url


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("fe80::1%eth0", False),
    ],
)
def test_which_peer_addresses_may_be_reached(address, allowed, settings):
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = False
    assert address_allowed(address) is allowed


def test_a_name_resolving_to_an_internal_address_is_refused_at_send_time(
    receiver, technician_a, company_a, settings, django_capture_on_commit_callbacks
):
    """The channel was saved while its name looked public; at send time it resolves to
    loopback (here ``localhost`` with loopback not allowed): nothing reaches the receiver
    and the delivery log says why."""
    hook = receiver()
    channel, _secret = add_channel(technician_a, "webhook", hook.url)
    channel.target_encrypted = crypto.encrypt(hook.url.replace("127.0.0.1", "localhost"))
    channel.save(update_fields=["target_encrypted"])
    settings.NOTIFY_ALLOW_HTTP_LOOPBACK = False
    with django_capture_on_commit_callbacks(execute=True):
        page([technician_a], IncidentFactory(company=company_a, severity="critical"))

    assert hook.requests == []
    delivery = Delivery.objects.get(channel=channel)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)  # not retried
    assert "private or internal address" in delivery.last_error
    assert "127.0.0.1" in delivery.last_error or "::1" in delivery.last_error
