"""Amazon SNS HTTP(S) deliveries of CloudWatch alarms, with SNS signature checks.

Nothing in an SNS body is trusted before ``verify_sns_message`` has checked its signature:
SignatureVersion "1" is SHA1withRSA, "2" SHA256withRSA, over the canonical string AWS
documents, with the public key of the certificate at ``SigningCertURL``. That URL must be
``https://sns.<region>.amazonaws.com[.cn]/...pem`` exactly (no user info, no port) or it is
refused before anything is fetched; certificates are cached for a day.

- SubscriptionConfirmation / UnsubscribeConfirmation: no alert; the result carries
  ``subscription_confirmation`` ({"type", "topic_arn", "token", "subscribe_url",
  "region"}) for the caller to confirm. ``SubscribeURL`` must pass the same host check.
- Notification: ``Message`` must be a CloudWatch alarm (JSON with AlarmName and
  NewStateValue), else 400.

CloudWatch alarm mapping (tool source "CloudWatch"):
- status and severity: ALARM -> firing, high; OK -> resolved, high (the severity of the
  alarm it closes); INSUFFICIENT_DATA -> firing, low (the metric stopped reporting,
  which is worth seeing but is not the alarm condition itself). CloudWatch has no
  severity of its own, so names and descriptions are not guessed at.
- asset: the alarm's metric dimension naming a resource (InstanceId, DBInstanceIdentifier,
  DBClusterIdentifier, CacheClusterId, FunctionName, AutoScalingGroupName, in that order),
  else the first dimension's value; dimensions are read from ``Trigger.Dimensions`` and,
  for metric-math alarms, from ``Trigger.Metrics[].MetricStat.Metric.Dimensions``.
- signature: AlarmName; message: NewStateReason (else the description, else the name);
  event time: StateChangeTime; fingerprint: AlarmArn; occurrence: AlarmArn and
  StateChangeTime (a redelivered notification of the same state change).
- labels: the dimensions, plus namespace, metric_name, aws_account_id and region (the
  region code from AlarmArn: the alarm's ``Region`` field is a display name).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.cache import cache
from rest_framework import serializers

from apps.common.errors import AuthenticationError

from .base import (
    AdapterError,
    AdapterOptions,
    ParseResult,
    build_alert,
    load_json,
    utc_datetime_field,
    validate_payload,
)

TOOL_SOURCE = "CloudWatch"

NOTIFICATION = "Notification"
CONFIRMATION_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
MESSAGE_TYPES = (NOTIFICATION, *CONFIRMATION_TYPES)

CERTIFICATE_CACHE_SECONDS = 24 * 60 * 60
CERTIFICATE_MAX_BYTES = 64 * 1024
CERTIFICATE_FETCH_TIMEOUT_SECONDS = 2

_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_SIGNED_KEYS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    **dict.fromkeys(
        CONFIRMATION_TYPES,
        ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    ),
}
_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}

# CloudWatch state -> (status, severity).
ALARM_STATES = {
    "ALARM": ("firing", "high"),
    "OK": ("resolved", "high"),
    "INSUFFICIENT_DATA": ("firing", "low"),
}
RESOURCE_DIMENSIONS = (
    "InstanceId",
    "DBInstanceIdentifier",
    "DBClusterIdentifier",
    "CacheClusterId",
    "FunctionName",
    "AutoScalingGroupName",
)


class _EnvelopeSerializer(serializers.Serializer):
    Type = serializers.ChoiceField(choices=MESSAGE_TYPES)
    MessageId = serializers.CharField()
    TopicArn = serializers.CharField()
    Message = serializers.CharField(trim_whitespace=False)
    Timestamp = serializers.CharField()
    SignatureVersion = serializers.CharField()
    Signature = serializers.CharField()
    SigningCertURL = serializers.CharField()
    SubscribeURL = serializers.CharField(required=False)
    Token = serializers.CharField(required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs["Type"] in CONFIRMATION_TYPES:
            missing = {
                name: [f"This field is required in a {attrs['Type']}."]
                for name in ("SubscribeURL", "Token")
                if name not in attrs
            }
            if missing:
                raise serializers.ValidationError(missing)
        return attrs


class _DimensionSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(allow_blank=True)


class _MetricSerializer(serializers.Serializer):
    Dimensions = _DimensionSerializer(many=True, required=False, default=list)


class _MetricStatSerializer(serializers.Serializer):
    Metric = _MetricSerializer()


class _MetricDataQuerySerializer(serializers.Serializer):
    MetricStat = _MetricStatSerializer(required=False)


class _TriggerSerializer(serializers.Serializer):
    MetricName = serializers.CharField(required=False, allow_null=True, default=None)
    Namespace = serializers.CharField(required=False, allow_null=True, default=None)
    Dimensions = _DimensionSerializer(many=True, required=False, default=list)
    Metrics = _MetricDataQuerySerializer(many=True, required=False, default=list)


class CloudWatchAlarmSerializer(serializers.Serializer):
    AlarmName = serializers.CharField()
    AlarmDescription = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    AWSAccountId = serializers.CharField(required=False, allow_blank=True, default="")
    NewStateValue = serializers.ChoiceField(choices=tuple(ALARM_STATES))
    NewStateReason = serializers.CharField(required=False, allow_blank=True, default="")
    StateChangeTime = utc_datetime_field(required=False, allow_null=True, default=None)
    AlarmArn = serializers.CharField(required=False, allow_blank=True, default="")
    Trigger = _TriggerSerializer(required=False)


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return "x-amz-sns-message-type" in headers or payload.get("Type") in MESSAGE_TYPES


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    envelope = validate_payload(_EnvelopeSerializer, payload, source="SNS")
    verify_sns_message(payload)
    if envelope["Type"] in CONFIRMATION_TYPES:
        return ParseResult(alerts=[], subscription_confirmation=_confirmation(envelope))
    alarm = _cloudwatch_alarm(envelope["Message"])
    status, severity = ALARM_STATES[alarm["NewStateValue"]]
    trigger = alarm.get("Trigger", {})
    dimensions = _dimensions(trigger)
    labels = {
        **dimensions,
        "namespace": trigger.get("Namespace") or "",
        "metric_name": trigger.get("MetricName") or "",
        "aws_account_id": alarm["AWSAccountId"],
        "region": _arn_region(alarm["AlarmArn"]),
    }
    alert = build_alert(
        asset_name=next(
            (dimensions[name] for name in RESOURCE_DIMENSIONS if dimensions.get(name)),
            next(iter(dimensions.values()), ""),
        ),
        signature=alarm["AlarmName"],
        severity=severity,
        message=alarm["NewStateReason"] or alarm.get("AlarmDescription") or alarm["AlarmName"],
        tool_source=TOOL_SOURCE,
        status=status,
        fingerprint=alarm["AlarmArn"],
        event_time=alarm["StateChangeTime"],
        labels={name: value for name, value in labels.items() if value},
        raw=payload,
        occurrence=f"{alarm['AlarmArn']}\x1f{alarm['StateChangeTime'] or ''}",
    )
    return ParseResult(alerts=[alert])


def verify_sns_message(envelope: dict) -> None:
    """Check an SNS message's signature; raise AuthenticationError unless it is AWS's."""
    message_type = envelope.get("Type")
    signed_keys = _SIGNED_KEYS.get(message_type) if isinstance(message_type, str) else None
    if signed_keys is None:
        raise _refused(f"Unknown SNS message type {message_type!r}.")
    version = envelope.get("SignatureVersion")
    algorithm = _SIGNATURE_HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise _refused(f"Unsupported SNS SignatureVersion {version!r}: expected '1' or '2'.")
    canonical = ""
    for key in signed_keys:
        value = envelope.get(key)
        if key == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            raise _refused(f"The SNS message has no {key}, which its signature covers.")
        canonical += f"{key}\n{value}\n"
    encoded_signature, certificate_url = envelope.get("Signature"), envelope.get("SigningCertURL")
    if not isinstance(encoded_signature, str) or not isinstance(certificate_url, str):
        raise _refused("The SNS message has no Signature or no SigningCertURL.")
    try:
        signature = base64.b64decode(encoded_signature, validate=True)
    except ValueError as exc:
        raise _refused("The SNS Signature is not valid base64.") from exc
    certificate_pem = fetch_signing_certificate(certificate_url)
    try:
        public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except ValueError as exc:
        raise _refused("The SNS signing certificate is not a PEM certificate.") from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise _refused("The SNS signing certificate does not hold an RSA key.")
    try:
        public_key.verify(signature, canonical.encode(), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise _refused("The SNS message signature does not match its content.") from exc


def certificate_cache_key(url: str) -> str:
    return "sns-cert:" + hashlib.sha256(url.encode()).hexdigest()


def fetch_signing_certificate(url: str) -> bytes:
    """The PEM at an SNS SigningCertURL, from the cache or downloaded (and cached for 24 h)."""
    if not _is_sns_url(url, certificate=True):
        raise _refused(
            f"The signing certificate URL {url!r} is not an AWS SNS host: expected "
            "https://sns.<region>.amazonaws.com/<name>.pem."
        )
    key = certificate_cache_key(url)
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        # The URL was checked above: https, an AWS SNS host, no user info or port.
        with urllib.request.urlopen(  # noqa: S310
            url, timeout=CERTIFICATE_FETCH_TIMEOUT_SECONDS
        ) as response:
            certificate_pem = response.read(CERTIFICATE_MAX_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise _refused(f"Could not fetch the SNS signing certificate from {url}: {exc}") from exc
    if len(certificate_pem) > CERTIFICATE_MAX_BYTES:
        raise _refused(f"The SNS signing certificate at {url} is larger than 64 KiB.")
    cache.set(key, certificate_pem, timeout=CERTIFICATE_CACHE_SECONDS)
    return certificate_pem


def _is_sns_url(url: str, *, certificate: bool) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "https" or not _SNS_HOST.fullmatch(parts.netloc):
        return False
    if certificate:
        return parts.path.endswith(".pem") and not parts.query and not parts.fragment
    return True


def _refused(message: str) -> AuthenticationError:
    return AuthenticationError(message, code="bad_sns_signature")


def _confirmation(envelope: dict) -> dict:
    subscribe_url = envelope["SubscribeURL"]
    if not _is_sns_url(subscribe_url, certificate=False):
        raise AdapterError(
            f"The SubscribeURL {subscribe_url!r} is not an AWS SNS host "
            "(https://sns.<region>.amazonaws.com/...); refusing to confirm it.",
            fields={"SubscribeURL": ["Not an AWS SNS host."]},
        )
    return {
        "type": envelope["Type"],
        "topic_arn": envelope["TopicArn"],
        "token": envelope["Token"],
        "subscribe_url": subscribe_url,
        "region": _arn_region(envelope["TopicArn"]),
    }


def _cloudwatch_alarm(message: str) -> dict:
    # Text that is not a JSON object is "not an alarm"; a JSON object we cannot read says why.
    alarm = load_json(message, what="The SNS Message") if message.lstrip()[:1] == "{" else None
    if not isinstance(alarm, dict) or not {"AlarmName", "NewStateValue"} <= alarm.keys():
        raise AdapterError(
            "The SNS Notification's Message is not a CloudWatch alarm: expected a JSON "
            "object with AlarmName and NewStateValue.",
            fields={"Message": ["Not a CloudWatch alarm."]},
        )
    return validate_payload(CloudWatchAlarmSerializer, alarm, source="CloudWatch", path="Message")


def _dimensions(trigger: dict) -> dict[str, str]:
    dimensions = list(trigger.get("Dimensions", []))
    for query in trigger.get("Metrics", []):
        if "MetricStat" in query:
            dimensions.extend(query["MetricStat"]["Metric"]["Dimensions"])
    found: dict[str, str] = {}
    for dimension in dimensions:
        found.setdefault(dimension["name"], dimension["value"])
    return found


def _arn_region(arn: str) -> str:
    """arn:aws:<service>:<region>:<account>:... -> <region>."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" else ""
