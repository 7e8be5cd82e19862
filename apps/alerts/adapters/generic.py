"""The product's own JSON alert body.

Shape: ``{"asset_name", "signature", "severity", "message", "tool_source"}`` are required;
``timestamp`` (ISO 8601; a value without an offset is read as UTC), ``status``
("firing" or "resolved", default "firing"), ``fingerprint`` (default "") and ``labels``
(an object of strings) are optional. A post with the ``fingerprint`` (or, without one, the
asset, signature and tool) and ``timestamp`` of a stored alert is a re-notification of it.

Severity: critical, high, medium or low in any letter case, or one of the synonyms in
``base.SEVERITY_ALIASES`` (warning -> medium, error -> high, info -> low, ...). Anything
else is refused with a 400 that lists the accepted values: a sender that invents a level
must hear about it rather than have it guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from .base import (
    NAME_MAX_LENGTH,
    SEVERITIES,
    SEVERITY_ALIASES,
    AdapterModel,
    AdapterOptions,
    ParseResult,
    UtcDatetime,
    build_alert,
    validate_model,
)

TOOL_SOURCE_MAX_LENGTH = 100

Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX_LENGTH)]


class GenericAlert(AdapterModel):
    asset_name: Name
    signature: Name
    severity: str
    message: str
    tool_source: Annotated[str, StringConstraints(min_length=1, max_length=TOOL_SOURCE_MAX_LENGTH)]
    timestamp: UtcDatetime | None = None
    status: Literal["firing", "resolved"] = "firing"
    fingerprint: Annotated[str, StringConstraints(max_length=NAME_MAX_LENGTH)] = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        severity = SEVERITY_ALIASES.get(value.lower())
        if severity is None:
            raise PydanticCustomError(
                "severity",
                '"{value}" is not a severity: use one of {allowed} '
                "(warning, error and info are accepted too).",
                {"value": value, "allowed": ", ".join(SEVERITIES)},
            )
        return severity


def occurrence(alert: GenericAlert) -> str:
    """The fingerprint and the event timestamp: without a timestamp each post is its own
    occurrence (it happens at its receipt)."""
    if alert.timestamp is None:
        return ""
    return f"{alert.fingerprint}\x1f{alert.timestamp.isoformat()}"


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return "asset_name" in payload and "signature" in payload


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    alert = validate_model(GenericAlert, payload, source="generic")
    return ParseResult(
        alerts=[
            build_alert(
                asset_name=alert.asset_name,
                signature=alert.signature,
                severity=alert.severity,
                message=alert.message,
                tool_source=alert.tool_source,
                status=alert.status,
                fingerprint=alert.fingerprint,
                event_time=alert.timestamp,
                labels=alert.labels,
                raw=payload,
                occurrence=occurrence(alert),
            )
        ]
    )
