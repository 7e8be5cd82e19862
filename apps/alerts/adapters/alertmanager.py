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
- raw: the alert as sent, with the group's ``externalURL`` added (for the silence link).
- message: the ``summary`` annotation, else ``description``, else ``message``, else the
  alert name.
- event time: ``startsAt`` for a firing alert, ``endsAt`` for a resolved one; the
  "0001-01-01T00:00:00Z" placeholder Alertmanager sends for "no end" counts as none.
- fingerprint: the alert's ``fingerprint`` (stable across firing and resolved).
- occurrence: the fingerprint and ``startsAt`` as sent: Alertmanager re-sends a firing
  alert on every ``repeat_interval`` and group change with both unchanged.
- an alert that fails validation is left out and named in ``rejected`` (index and field
  errors); the body is refused (400) only when none of its alerts is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from .base import (
    SEVERITY_ALIASES,
    AdapterError,
    AdapterModel,
    AdapterOptions,
    NormalizedAlert,
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


class _Envelope(AdapterModel):
    """A group whose alerts are read one by one."""

    alerts: list[Any] = Field(min_length=1)
    commonLabels: dict[str, str] = Field(default_factory=dict)


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return isinstance(payload.get("alerts"), list) and payload.get("version") == "4"


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    return parse_alert_group(payload, options=options, tool_source=TOOL_SOURCE)


def parse_alert_group(payload: dict, *, options: AdapterOptions, tool_source: str) -> ParseResult:
    """Normalize an Alertmanager-shaped group (Alertmanager itself or Grafana).

    The group is validated whole (the cheap path); when that fails, alert by alert, so the
    valid alerts are kept and the others answered in ``rejected``: Alertmanager re-sends a
    refused group for ever, and one odd alert must not hold back the rest. AdapterError
    only when the group itself is wrong or no alert of it is valid."""
    try:
        group = validate_model(AlertGroup, payload, source=tool_source)
    except AdapterError as error:
        return _alert_by_alert(payload, error, options=options, tool_source=tool_source)
    alerts = []
    rejected = []
    for index, (alert, raw) in enumerate(zip(group.alerts, payload["alerts"], strict=True)):
        try:
            stored = _with_url(raw, payload)
            alerts.append(_normalized(alert, stored, group.commonLabels, options, tool_source))
        except AdapterError as refused:
            rejected.append({"index": index, "errors": refused.fields})
    return _result(alerts, rejected, tool_source=tool_source)


def _alert_by_alert(
    payload: dict, error: AdapterError, *, options: AdapterOptions, tool_source: str
) -> ParseResult:
    try:
        envelope = validate_model(_Envelope, payload, source=tool_source)
    except AdapterError:
        raise error from None
    alerts = []
    rejected = []
    for index, raw in enumerate(envelope.alerts):
        try:
            alert = validate_model(_Alert, raw, source=tool_source)
            alerts.append(
                _normalized(
                    alert, _with_url(raw, payload), envelope.commonLabels, options, tool_source
                )
            )
        except AdapterError as refused:
            rejected.append({"index": index, "errors": refused.fields})
    return _result(alerts, rejected, tool_source=tool_source)


def _with_url(raw: Any, group: dict) -> Any:
    """The alert as sent, with its group's ``externalURL`` (the Alertmanager or Grafana
    that sent it: the silence link is built from it)."""
    url = group.get("externalURL")
    if isinstance(url, str) and url and isinstance(raw, dict) and "externalURL" not in raw:
        return {**raw, "externalURL": url}
    return raw


def _result(alerts: list, rejected: list[dict], *, tool_source: str) -> ParseResult:
    if alerts or not rejected:
        return ParseResult(alerts=alerts, rejected=rejected)
    fields = {
        f"alerts.{item['index']}.{name}": messages
        for item in rejected
        for name, messages in item["errors"].items()
    }
    problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
    raise AdapterError(f"Invalid {tool_source} payload: {problems}", fields=fields)


def _normalized(
    alert: _Alert,
    raw: Any,
    common_labels: dict[str, str],
    options: AdapterOptions,
    tool_source: str,
) -> NormalizedAlert:
    labels = {**common_labels, **alert.labels}
    annotations = alert.annotations
    alertname = labels["alertname"]
    severity = SEVERITY_ALIASES.get(labels.get("severity", "").strip().lower())
    return build_alert(
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
        occurrence=_occurrence(alert, raw),
    )


def _occurrence(alert: _Alert, raw: Any) -> str:
    if not alert.fingerprint:
        return ""
    starts_at = raw.get("startsAt") if isinstance(raw, dict) else None
    return f"{alert.fingerprint}\x1f{starts_at or ''}"


def _event_time(alert: _Alert) -> datetime | None:
    moment = alert.endsAt if alert.status == "resolved" else alert.startsAt
    if moment is None or moment.year <= 1:
        return None
    return moment
