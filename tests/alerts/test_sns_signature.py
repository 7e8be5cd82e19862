"""SNS deliveries of CloudWatch alarms: signature checks, certificate fetching, parsing.

Tests cannot reach AWS: each envelope (built from the documented fixtures) is signed with a
throwaway RSA key whose self-signed certificate is pre-seeded in Django's cache under the
key the fetcher reads, and any attempt to download a certificate fails the test unless the
test installs its own fake download.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from django.core.cache import cache

from apps.alerts.adapters import AdapterError, AdapterOptions, ParseResult, parse
from apps.alerts.adapters.sns import (
    certificate_cache_key,
    fetch_signing_certificate,
    verify_sns_message,
)
from apps.common.errors import AuthenticationError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "documented"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-5xx-rate-high"
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


SIGNING_KEY = new_key()
OTHER_KEY = new_key()
SIGNING_CERT_PEM = self_signed_pem(SIGNING_KEY)


def canonical(envelope: dict) -> bytes:
    keys = NOTIFICATION_KEYS if envelope["Type"] == "Notification" else CONFIRMATION_KEYS
    return "".join(f"{key}\n{envelope[key]}\n" for key in keys if key in envelope).encode()


def signed(
    envelope: dict,
    *,
    version: str = "1",
    key: rsa.RSAPrivateKey = SIGNING_KEY,
    cert_url: str = CERT_URL,
) -> dict:
    envelope = {**envelope, "SignatureVersion": version, "SigningCertURL": cert_url}
    signature = key.sign(canonical(envelope), padding.PKCS1v15(), HASHES[version]())
    return {**envelope, "Signature": base64.b64encode(signature).decode()}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def alarm_envelope(**alarm_changes) -> dict:
    """The documented ALARM notification, its alarm changed as given (None removes a key)."""
    envelope = fixture("aws_sns_cloudwatch_alarm_notification.json")["body"]
    alarm = {**json.loads(envelope["Message"]), **alarm_changes}
    alarm = {key: value for key, value in alarm.items() if value is not None}
    return {**envelope, "Message": json.dumps(alarm)}


def confirmation_envelope(**changes) -> dict:
    return {**fixture("aws_sns_subscription_confirmation.json")["body"], **changes}


def seed_certificate(url: str = CERT_URL, pem: bytes = SIGNING_CERT_PEM) -> None:
    cache.set(certificate_cache_key(url), pem)


def refused(envelope: dict) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        verify_sns_message(envelope)
    assert caught.value.status_code == 401
    assert caught.value.code == "bad_sns_signature"
    return caught.value


def parse_sns(envelope: dict, *, source: str | None = "sns") -> ParseResult:
    return parse(
        source,
        body=json.dumps(envelope).encode(),
        content_type="text/plain; charset=UTF-8",
        headers={"x-amz-sns-message-type": envelope["Type"]},
        options=AdapterOptions(),
    )


class FakeResponse:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def read(self, size: int) -> bytes:
        return self.content[:size]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url, timeout):
        pytest.fail(f"tried to download {url}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def downloads(monkeypatch):
    """Serve certificate downloads from a dict of url -> bytes or exception; log calls."""
    served: dict[str, bytes | Exception] = {}
    calls: list[tuple[str, float]] = []

    def urlopen(url, timeout):
        calls.append((url, timeout))
        content = served[url]
        if isinstance(content, Exception):
            raise content
        return FakeResponse(content)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return served, calls


# --- signature verification ------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param(alarm_envelope(), id="notification"),
        pytest.param(
            {k: v for k, v in alarm_envelope().items() if k != "Subject"},
            id="notification-without-subject",
        ),
        pytest.param(confirmation_envelope(), id="subscription-confirmation"),
        pytest.param(
            confirmation_envelope(Type="UnsubscribeConfirmation"), id="unsubscribe-confirmation"
        ),
    ],
)
def test_valid_signature_passes(version, envelope):
    seed_certificate()

    assert verify_sns_message(signed(envelope, version=version)) is None


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Message", json.dumps({"AlarmName": "other", "NewStateValue": "OK"})),
        ("Subject", "OK: nothing to see"),
        ("Timestamp", "2026-03-14T10:00:00.000Z"),
        ("TopicArn", "arn:aws:sns:us-east-1:999999999999:attacker"),
    ],
)
def test_tampered_message_fails(version, key, value):
    seed_certificate()
    envelope = {**signed(alarm_envelope(), version=version), key: value}

    assert "does not match" in refused(envelope).message


def test_removed_subject_fails():
    seed_certificate()
    envelope = signed(alarm_envelope())
    del envelope["Subject"]

    refused(envelope)


def test_tampered_confirmation_token_fails():
    seed_certificate()
    envelope = {**signed(confirmation_envelope()), "Token": "attacker-token"}

    refused(envelope)


def test_signature_from_another_key_fails():
    seed_certificate()

    assert "does not match" in refused(signed(alarm_envelope(), key=OTHER_KEY)).message


def test_version_1_signature_presented_as_version_2_fails():
    seed_certificate()
    envelope = {**signed(alarm_envelope(), version="1"), "SignatureVersion": "2"}

    refused(envelope)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"SignatureVersion": "3"}, "SignatureVersion '3'"),
        ({"Signature": "not base64!"}, "not valid base64"),
        ({"Type": "Heartbeat"}, "Unknown SNS message type 'Heartbeat'"),
        ({"MessageId": None}, "no MessageId"),
    ],
)
def test_malformed_envelope_fails(changes, fragment):
    seed_certificate()
    envelope = {**signed(alarm_envelope()), **changes}
    envelope = {key: value for key, value in envelope.items() if value is not None}

    assert fragment in refused(envelope).message


@pytest.mark.parametrize(
    "pem",
    [b"not a certificate", self_signed_pem(ec.generate_private_key(ec.SECP256R1()))],
    ids=["garbage", "ec-key"],
)
def test_unusable_certificate_fails(pem):
    seed_certificate(pem=pem)

    assert "certificate" in refused(signed(alarm_envelope())).message


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-test.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.txt",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem?x=.pem",
        "https://s3.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com\n.evil.com/SimpleNotificationService-test.pem",
    ],
)
def test_non_aws_certificate_url_is_refused_without_any_fetch(url):
    # Even a cached, valid certificate for that URL must not be used.
    seed_certificate(url)

    error = refused(signed(alarm_envelope(), cert_url=url))

    assert "not an AWS SNS host" in error.message


def test_china_region_certificate_url_is_accepted():
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-test.pem"
    seed_certificate(url)

    assert verify_sns_message(signed(alarm_envelope(), cert_url=url)) is None


# --- certificate fetching --------------------------------------------------------------------


def test_certificate_is_downloaded_once_then_served_from_the_cache(downloads):
    served, calls = downloads
    served[CERT_URL] = SIGNING_CERT_PEM

    assert fetch_signing_certificate(CERT_URL) == SIGNING_CERT_PEM
    assert fetch_signing_certificate(CERT_URL) == SIGNING_CERT_PEM
    assert calls == [(CERT_URL, 2)]  # a short timeout: the webhook thread waits
    assert cache.get(certificate_cache_key(CERT_URL)) == SIGNING_CERT_PEM
    assert certificate_cache_key(CERT_URL).startswith("sns-cert:")


def test_verification_downloads_the_certificate_when_not_cached(downloads):
    served, calls = downloads
    served[CERT_URL] = SIGNING_CERT_PEM

    verify_sns_message(signed(alarm_envelope()))

    assert calls == [(CERT_URL, 2)]  # a short timeout: the webhook thread waits


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (urllib.error.URLError("timed out"), "Could not fetch the SNS signing certificate"),
        (TimeoutError("read timed out"), "Could not fetch the SNS signing certificate"),
        (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
    ],
    ids=["url-error", "timeout", "too-large"],
)
def test_certificate_fetch_failure_is_an_authentication_error(downloads, content, fragment):
    served, _ = downloads
    served[CERT_URL] = content

    with pytest.raises(AuthenticationError) as caught:
        fetch_signing_certificate(CERT_URL)

    assert caught.value.code == "bad_sns_signature"
    assert fragment in caught.value.message
    assert cache.get(certificate_cache_key(CERT_URL)) is None


# --- parsing SNS deliveries ------------------------------------------------------------------


@pytest.mark.parametrize("source", ["sns", "cloudwatch", None])
def test_alarm_notification_fixture(source):
    seed_certificate()
    document = fixture("aws_sns_cloudwatch_alarm_notification.json")
    envelope = signed(document["body"])

    result = parse(
        source,
        body=json.dumps(envelope).encode(),
        content_type=document["headers"]["Content-Type"],
        headers=document["headers"],
        options=AdapterOptions(),
    )

    (alert,) = result.alerts
    assert alert.asset_name == "app/prod-api-alb/50dc6c495c0c9188"
    assert alert.signature == "prod-api-5xx-rate-high"
    assert alert.severity == "high"
    assert alert.status == "firing"
    assert alert.fingerprint == ALARM_ARN
    assert alert.event_time == datetime(2026, 3, 14, 9, 42, 5, 118000, tzinfo=UTC)
    assert alert.tool_source == "CloudWatch"
    assert alert.message == document["body_Message_decoded"]["NewStateReason"]
    assert alert.labels == {
        "LoadBalancer": "app/prod-api-alb/50dc6c495c0c9188",
        "TargetGroup": "targetgroup/prod-api-tg/6d0ecf831eec9f09",
        "namespace": "AWS/ApplicationELB",
        "metric_name": "HTTPCode_Target_5XX_Count",
        "aws_account_id": "123456789012",
        "region": "us-east-1",
    }
    assert alert.raw == envelope
    assert result.subscription_confirmation is None


@pytest.mark.parametrize("source", ["sns", None])
def test_ok_notification_fixture_resolves_the_alarm(source):
    seed_certificate()

    (alert,) = parse_sns(
        signed(fixture("aws_sns_cloudwatch_ok_notification.json")["body"]), source=source
    ).alerts

    assert (alert.asset_name, alert.signature, alert.severity, alert.status) == (
        "app/prod-api-alb/50dc6c495c0c9188",
        "prod-api-5xx-rate-high",
        "high",
        "resolved",
    )
    assert alert.fingerprint == ALARM_ARN
    assert alert.event_time == datetime(2026, 3, 14, 9, 56, 5, 402000, tzinfo=UTC)


@pytest.mark.parametrize("source", ["sns", None])
def test_subscription_confirmation_fixture(source):
    seed_certificate()
    envelope = fixture("aws_sns_subscription_confirmation.json")["body"]

    result = parse_sns(signed(envelope), source=source)

    assert result.alerts == []
    assert result.subscription_confirmation == {
        "type": "SubscriptionConfirmation",
        "topic_arn": "arn:aws:sns:us-east-1:123456789012:alert-platform-prod",
        "token": envelope["Token"],
        "subscribe_url": envelope["SubscribeURL"],
        "region": "us-east-1",
    }


def test_unsubscribe_confirmation_is_reported_as_such():
    seed_certificate()

    result = parse_sns(signed(confirmation_envelope(Type="UnsubscribeConfirmation")))

    assert result.alerts == []
    assert result.subscription_confirmation["type"] == "UnsubscribeConfirmation"


def test_fixture_with_its_made_up_signature_is_refused():
    document = fixture("aws_sns_cloudwatch_alarm_notification.json")
    seed_certificate(document["body"]["SigningCertURL"])

    with pytest.raises(AuthenticationError) as caught:
        parse_sns(document["body"])

    assert "does not match" in caught.value.message


def test_subscribe_url_outside_aws_is_refused():
    seed_certificate()
    envelope = signed(confirmation_envelope(SubscribeURL="https://evil.example.com/?Token=x"))

    with pytest.raises(AdapterError) as caught:
        parse_sns(envelope)

    assert caught.value.status_code == 400
    assert "SubscribeURL 'https://evil.example.com/?Token=x' is not an AWS SNS host" in (
        caught.value.message
    )
    assert list(caught.value.fields) == ["SubscribeURL"]


@pytest.mark.parametrize(
    "message",
    ["Hello from SNS", json.dumps({"source": "aws.ec2", "detail": {}}), json.dumps(["ALARM"])],
    ids=["text", "other-json", "array"],
)
def test_notification_that_is_not_a_cloudwatch_alarm_is_refused(message):
    seed_certificate()
    envelope = signed({**alarm_envelope(), "Message": message})

    with pytest.raises(AdapterError) as caught:
        parse_sns(envelope)

    assert caught.value.status_code == 400
    assert caught.value.code == "invalid_payload"
    assert "not a CloudWatch alarm" in caught.value.message
    assert list(caught.value.fields) == ["Message"]


def test_alarm_with_unknown_state_names_the_nested_field():
    seed_certificate()

    with pytest.raises(AdapterError) as caught:
        parse_sns(signed(alarm_envelope(NewStateValue="BROKEN")))

    assert list(caught.value.fields) == ["Message.NewStateValue"]


def test_confirmation_without_token_is_refused():
    seed_certificate()
    envelope = confirmation_envelope()
    del envelope["Token"]

    with pytest.raises(AdapterError) as caught:
        parse_sns(envelope)

    assert list(caught.value.fields) == ["Token"]


def test_insufficient_data_is_a_low_firing_alert():
    seed_certificate()

    (alert,) = parse_sns(signed(alarm_envelope(NewStateValue="INSUFFICIENT_DATA"))).alerts

    assert (alert.severity, alert.status) == ("low", "firing")


def test_resource_dimension_is_preferred_to_the_first_one():
    seed_certificate()
    trigger = {
        "Namespace": "AWS/EC2",
        "MetricName": "CPUUtilization",
        "Dimensions": [
            {"name": "AutoScalingGroupName", "value": "web-asg"},
            {"name": "InstanceId", "value": "i-0abc123"},
        ],
    }

    (alert,) = parse_sns(signed(alarm_envelope(Trigger=trigger))).alerts

    assert alert.asset_name == "i-0abc123"


def test_metric_math_alarm_takes_the_asset_from_its_metrics():
    seed_certificate()
    trigger = {
        "Period": 60,
        "Metrics": [
            {"Expression": "m1*1", "Id": "e1", "Label": "Expression1", "ReturnData": True},
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {
                        "Dimensions": [{"value": "i-0def456", "name": "InstanceId"}],
                        "MetricName": "NetworkOut",
                        "Namespace": "AWS/EC2",
                    },
                    "Period": 60,
                    "Stat": "Average",
                },
                "ReturnData": False,
            },
        ],
    }

    (alert,) = parse_sns(signed(alarm_envelope(Trigger=trigger))).alerts

    assert alert.asset_name == "i-0def456"
    assert alert.labels["InstanceId"] == "i-0def456"


def test_alarm_without_dimensions_is_filed_under_unknown():
    seed_certificate()

    (alert,) = parse_sns(signed(alarm_envelope(Trigger=None))).alerts

    assert alert.asset_name == "unknown"
    assert alert.labels == {"aws_account_id": "123456789012", "region": "us-east-1"}
