"""PagerDuty Events API v2 alert events, as PagerDuty's ``/v2/enqueue`` takes them.

Uptime Kuma, Sentry, New Relic, Nagios, Icinga, Checkmk, Grafana's and Zabbix's PagerDuty
integrations, Alertmanager's ``pagerduty_configs`` and the cloud monitors' PagerDuty
channels all speak it. The routing key is the company's API key (the view reads it from
``routing_key`` unless the URL or ``X-API-Key`` carries one).

- ``event_action``: trigger -> firing; resolve -> resolved; acknowledge -> no alert (a
  tool's acknowledgement is not a new occurrence) but ``acknowledge`` set to the dedup key:
  the open incident of that key's alert is acknowledged by the integration.
- ``dedup_key`` (at most 255 characters) is the fingerprint, so a resolve closes the
  triggers with the same key, and the occurrence, so a repeated trigger updates the open
  alert. A trigger without one gets a new key, answered as PagerDuty answers it.
  Acknowledge and resolve need one.
- trigger ``payload`` (required): ``summary`` (message, and signature when there is no
  ``class``), ``source`` (asset), ``severity`` (critical -> critical, error -> high,
  warning -> medium, info -> low), optional ``timestamp`` (event time), ``component``,
  ``group``, ``class`` and ``custom_details`` (labels: the three names, then the details'
  scalar values as strings). ``client`` is the tool source (default "PagerDuty Events").
- a resolve may carry a payload (Alertmanager and Grafana send one); without it the
  resolved alert is filed under ``base.UNKNOWN_ASSET`` with the dedup key as signature.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from .base import (
    NAME_MAX_LENGTH,
    AdapterError,
    AdapterModel,
    AdapterOptions,
    ParseResult,
    UtcDatetime,
    build_alert,
    validate_model,
)

DEFAULT_TOOL_SOURCE = "PagerDuty Events"
TOOL_SOURCE_MAX_LENGTH = 100
SEVERITIES = {"critical": "critical", "error": "high", "warning": "medium", "info": "low"}
SUMMARY_MAX_LENGTH = 1024


class _Payload(AdapterModel):
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX_LENGTH)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX_LENGTH)]
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: UtcDatetime | None = None
    component: str = ""
    group: str = ""
    class_: str = Field(default="", alias="class")
    custom_details: Any = None


class _WithPayload(AdapterModel):
    payload: _Payload


class _Event(AdapterModel):
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: Annotated[str, StringConstraints(max_length=NAME_MAX_LENGTH)] = ""
    payload: dict | None = None
    client: Annotated[str, StringConstraints(max_length=TOOL_SOURCE_MAX_LENGTH)] = ""

    @model_validator(mode="after")
    def _needs(self) -> _Event:
        if self.event_action == "trigger" and self.payload is None:
            raise PydanticCustomError("payload", "'payload' is missing: a trigger needs one.")
        if self.event_action != "trigger" and not self.dedup_key:
            raise PydanticCustomError(
                "dedup_key", "'dedup_key' is missing: an acknowledge or resolve needs one."
            )
        return self


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return "event_action" in payload and ("routing_key" in payload or "dedup_key" in payload)


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    event = validate_model(_Event, payload, source="PagerDuty")
    dedup_key = event.dedup_key or uuid.uuid4().hex
    reply = {"dedup_key": dedup_key}
    if event.event_action == "acknowledge":
        return ParseResult(alerts=[], reply=reply, acknowledge=dedup_key)
    status = "firing" if event.event_action == "trigger" else "resolved"
    tool_source = event.client or DEFAULT_TOOL_SOURCE
    details = _details(event)
    if details is None:
        alert = build_alert(
            asset_name="",
            signature=dedup_key,
            severity="low",
            message=f"Resolved by {tool_source}.",
            tool_source=tool_source,
            status=status,
            fingerprint=dedup_key,
            event_time=None,
            labels={},
            raw=payload,
            occurrence=dedup_key,
        )
        return ParseResult(alerts=[alert], reply=reply)
    alert = build_alert(
        asset_name=details.source,
        signature=details.class_ or details.summary,
        severity=SEVERITIES[details.severity],
        message=details.summary,
        tool_source=tool_source,
        status=status,
        fingerprint=dedup_key,
        event_time=details.timestamp,
        labels=_labels(details),
        raw=payload,
        occurrence=dedup_key,
    )
    return ParseResult(alerts=[alert], reply=reply)


def _details(event: _Event) -> _Payload | None:
    """A trigger's payload (AdapterError when invalid); a resolve's when it has a valid one."""
    if event.event_action == "trigger":
        return validate_model(_WithPayload, {"payload": event.payload}, source="PagerDuty").payload
    if event.payload is None:
        return None
    try:
        return validate_model(_WithPayload, {"payload": event.payload}, source="PagerDuty").payload
    except AdapterError:
        return None


def _labels(details: _Payload) -> dict[str, str]:
    labels = {
        name: value
        for name, value in (
            ("component", details.component),
            ("group", details.group),
            ("class", details.class_),
        )
        if value
    }
    if isinstance(details.custom_details, dict):
        for name, value in details.custom_details.items():
            if isinstance(value, str | int | float | bool) and name not in labels:
                labels[name] = str(value)
    return labels
