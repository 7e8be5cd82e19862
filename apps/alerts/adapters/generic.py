"""The product's own JSON alert body.

Shape: ``{"asset_name", "signature", "severity", "message", "tool_source"}`` are required;
``timestamp`` (ISO 8601; a value without an offset is read as UTC), ``status``
("firing" or "resolved", default "firing"), ``fingerprint`` (default "") and ``labels``
(an object of strings) are optional.

Severity: critical, high, medium or low in any letter case, or one of the synonyms in
``base.SEVERITY_ALIASES`` (warning -> medium, error -> high, info -> low, ...). Anything
else is refused with a 400 that lists the accepted values: a sender that invents a level
must hear about it rather than have it guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from .base import (
    NAME_MAX_LENGTH,
    SEVERITIES,
    SEVERITY_ALIASES,
    STATUSES,
    AdapterOptions,
    ParseResult,
    build_alert,
    utc_datetime_field,
    validate_payload,
)

TOOL_SOURCE_MAX_LENGTH = 100


class GenericAlertSerializer(serializers.Serializer):
    asset_name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    signature = serializers.CharField(max_length=NAME_MAX_LENGTH)
    severity = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    tool_source = serializers.CharField(max_length=TOOL_SOURCE_MAX_LENGTH)
    timestamp = utc_datetime_field(required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(choices=STATUSES, required=False, default="firing")
    fingerprint = serializers.CharField(
        max_length=NAME_MAX_LENGTH, required=False, allow_blank=True, default=""
    )
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict
    )

    def validate_severity(self, value: str) -> str:
        severity = SEVERITY_ALIASES.get(value.strip().lower())
        if severity is None:
            raise serializers.ValidationError(
                f'"{value}" is not a severity: use one of {", ".join(SEVERITIES)} '
                "(warning, error and info are accepted too)."
            )
        return severity


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return "asset_name" in payload and "signature" in payload


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    data = validate_payload(GenericAlertSerializer, payload, source="generic")
    alert = build_alert(
        asset_name=data["asset_name"],
        signature=data["signature"],
        severity=data["severity"],
        message=data["message"],
        tool_source=data["tool_source"],
        status=data["status"],
        fingerprint=data["fingerprint"],
        event_time=data["timestamp"],
        labels=data["labels"],
        raw=payload,
    )
    return ParseResult(alerts=[alert])
