"""Prometheus Alertmanager webhook (payload version "4"); Grafana reuses the group parsing.

One body carries a group of alerts; each becomes one normalized alert. Each alert's own
``status`` is used, never the group's: a group whose status is "firing" can hold alerts that
have already resolved.

- signature: the ``alertname`` label (required on every alert).
- asset: the label the company chose (``AdapterOptions.asset_label``, default "instance"),
  else ``host``, ``hostname``, ``instance``, ``job``; an alert with none of them (a
  Watchdog heartbeat, say) is filed under ``base.UNKNOWN_ASSET``. Label values are taken
  as they are (an ``instance`` keeps its ``:port``).
- severity: the ``severity`` label through ``base.SEVERITY_ALIASES`` (critical/page/fatal ->
  critical, error/major -> high, warning/average -> medium, info/minor/none -> low). A
  missing or unrecognised value becomes "medium" instead of a 400: Alertmanager does not
  retry a 400, so refusing would drop every alert of the group over one odd label (the
  original value stays in ``labels``).
- labels: the group's ``commonLabels`` overlaid with the alert's own labels.
- message: the ``summary`` annotation, else ``description``, else ``message``, else the
  alert name.
- event time: ``startsAt`` for a firing alert, ``endsAt`` for a resolved one; the
  "0001-01-01T00:00:00Z" placeholder Alertmanager sends for "no end" counts as none.
- fingerprint: the alert's ``fingerprint`` (stable across firing and resolved).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from .base import (
    SEVERITY_ALIASES,
    AdapterModel,
    AdapterOptions,
    ParseResult,
    UtcDatetime,
    asset_from_labels,
    build_alert,
    validate_model,
)

TOOL_SOURCE = "Alertmanager"
DEFAULT_SEVERITY = "medium"


class _Alert(AdapterModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: UtcDatetime | None = None
    endsAt: UtcDatetime | None = None
    fingerprint: str = ""

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname", "").strip():
            raise PydanticCustomError("alertname", "Every alert needs an alertname label.")
        return labels


class AlertGroup(AdapterModel):
    alerts: list[_Alert] = Field(min_length=1)
    commonLabels: dict[str, str] = Field(default_factory=dict)


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return isinstance(payload.get("alerts"), list) and payload.get("version") == "4"


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    return parse_alert_group(payload, options=options, tool_source=TOOL_SOURCE)


def parse_alert_group(payload: dict, *, options: AdapterOptions, tool_source: str) -> ParseResult:
    """Normalize an Alertmanager-shaped group (Alertmanager itself or Grafana)."""
    group = validate_model(AlertGroup, payload, source=tool_source)
    alerts = []
    for alert, raw in zip(group.alerts, payload["alerts"], strict=True):
        labels = {**group.commonLabels, **alert.labels}
        annotations = alert.annotations
        alertname = labels["alertname"]
        severity = SEVERITY_ALIASES.get(labels.get("severity", "").strip().lower())
        alerts.append(
            build_alert(
                asset_name=asset_from_labels(labels, options=options),
                signature=alertname,
                severity=severity or DEFAULT_SEVERITY,
                message=annotations.get("summary")
                or annotations.get("description")
                or annotations.get("message")
                or alertname,
                tool_source=tool_source,
                status=alert.status,
                fingerprint=alert.fingerprint,
                event_time=_event_time(alert),
                labels=labels,
                raw=raw,
            )
        )
    return ParseResult(alerts=alerts)


def _event_time(alert: _Alert) -> datetime | None:
    moment = alert.endsAt if alert.status == "resolved" else alert.startsAt
    if moment is None or moment.year <= 1:
        return None
    return moment
