"""Datadog webhook integration: the default payload and the usual custom templates.

Datadog fills a template with string variables, so every value is a string (dates are
epoch milliseconds) and a variable with no value arrives as "". Read fields: the default
payload's ``title``, ``body``, ``date`` and ``id``, and these custom-template fields when
present: ``alert_title``, ``alert_transition``, ``priority``/``alert_priority``,
``alert_id``, ``alert_cycle_key``, ``alert_scope``, ``host``/``hostname``, ``tags``,
``text_only_msg``.

- state: ``alert_transition`` ($ALERT_TRANSITION) when present, else the title's prefix
  ("[Triggered on {host:web-03}] High CPU"). Triggered/Re-Triggered/Renotify -> firing,
  Warn/Re-Warn -> firing, No Data/Re-No Data -> firing, Recovered -> resolved; any other
  state (or a title without one) is a 400.
- severity: the priority (``priority``/``alert_priority`` or a "[P1]" title prefix): P1 ->
  critical, P2 -> high, P3 -> medium, P4/P5 -> low; a priority field wins over the title's,
  and one that is not P1-P5 is ignored. Without a priority: Triggered and Recovered ->
  high (a recovery cannot tell whether it ends a Warn or an alert), Warn and No Data ->
  medium.
- signature: the monitor name, i.e. the title without its bracketed prefixes.
- asset: ``host``/``hostname``, else the ``host:`` tag, else the ``host:`` item of the
  alert's scope (``alert_scope`` or the title's "on {...}"), else the scope's first value,
  else ``base.UNKNOWN_ASSET``.
- fingerprint: what stays the same from trigger to recovery. ``alert_cycle_key`` when
  present; else ``alert_id`` (the monitor id) followed by "|scope" for a multi-alert
  monitor; else, for the default payload, the monitor id from the body's
  ".../monitors/<id>" link followed by "|scope"; else the event ``id``, which differs
  between trigger and recovery and so only identifies the notification itself.
- occurrence: the fingerprint (unless it is the event id) and the transition, a repeated
  one (Re-Triggered, Renotify, Re-Warn, Re-No Data) counted as the one it repeats: a
  renotification updates the stored alert while it is open.
- event time: ``date`` (epoch milliseconds).
- message: ``text_only_msg``, else ``body`` without Datadog's "%%%" markdown markers, else
  the title.
- labels: the tags ("key:value"; a tag without a colon gets ""), then the scope's items.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from .base import (
    AdapterError,
    AdapterOptions,
    ParseResult,
    build_alert,
    validate_payload,
)

TOOL_SOURCE = "Datadog"

# Re-notifications of a state, as the state they repeat.
REPEATED_STATES = {
    "re-triggered": "triggered",
    "renotify": "triggered",
    "re-warn": "warn",
    "re-no data": "no data",
}
# Alert transition (lower case) -> (status, severity when the alert has no priority).
STATES: dict[str, tuple[str, str]] = {
    "triggered": ("firing", "high"),
    "re-triggered": ("firing", "high"),
    "renotify": ("firing", "high"),
    "warn": ("firing", "medium"),
    "re-warn": ("firing", "medium"),
    "no data": ("firing", "medium"),
    "re-no data": ("firing", "medium"),
    "recovered": ("resolved", "high"),
}
SEVERITY_BY_PRIORITY = {"1": "critical", "2": "high", "3": "medium", "4": "low", "5": "low"}

_BRACKETED = re.compile(r"\s*\[([^\]]*)\]")
_PRIORITY = re.compile(r"P([1-5])", re.IGNORECASE)
_STATE_AND_SCOPE = re.compile(r"(?P<state>.+?)(?:\s+on\s+\{(?P<scope>[^}]*)\})?")
_MARKDOWN_MARKERS = re.compile(r"\A\s*%%%\s*|\s*%%%\s*\Z")
_MONITOR_LINK = re.compile(r"https://[^\s/()\[\]]+/monitors/(\d+)")


class _TagsField(serializers.Field):
    """$TAGS: a comma-separated string, or a list of strings in a hand-built template."""

    default_error_messages = {"invalid": "Expected a comma-separated string or a list of strings."}

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, str):
            items = data.split(",")
        elif isinstance(data, list) and all(isinstance(item, str) for item in data):
            items = data
        else:
            self.fail("invalid")
        return [item.strip() for item in items if item.strip()]


def _text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, default="", **kwargs)


class DatadogEventSerializer(serializers.Serializer):
    title = _text()
    alert_title = _text()
    alert_transition = _text()
    priority = _text()
    alert_priority = _text()
    alert_id = _text()
    alert_cycle_key = _text()
    alert_scope = _text()
    id = _text()
    host = _text()
    hostname = _text()
    tags = _TagsField(required=False, default=list)
    body = _text()
    text_only_msg = _text()
    date = _text()

    def validate_date(self, value: str) -> datetime | None:
        if not value:
            return None
        if not value.isdigit():
            raise serializers.ValidationError("Expected epoch milliseconds ($DATE).")
        try:
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        except (OverflowError, ValueError, OSError) as exc:
            raise serializers.ValidationError("The date is out of range.") from exc

    def validate(self, attrs: dict) -> dict:
        if not (attrs["title"] or attrs["alert_title"]):
            raise serializers.ValidationError(
                {"title": ["This field is required (the $EVENT_TITLE of the monitor)."]}
            )
        return attrs


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    if "alert_transition" in payload or "alert_cycle_key" in payload:
        return True
    return isinstance(payload.get("title"), str) and ("event_type" in payload or "org" in payload)


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    data = validate_payload(DatadogEventSerializer, payload, source="Datadog")
    title = data["title"] or data["alert_title"]
    prefixes, monitor_name = _split_title(title)
    priority = data["priority"] or data["alert_priority"]
    title_state, title_scope = "", ""
    for prefix in prefixes:
        if _PRIORITY.fullmatch(prefix):
            priority = priority or prefix
        elif not title_state and (match := _STATE_AND_SCOPE.fullmatch(prefix)):
            title_state, title_scope = match["state"], match["scope"] or ""
    transition = data["alert_transition"] or title_state
    status, default_severity = _state(transition, title=title)
    state = transition.strip().lower()
    scope = data["alert_scope"] or title_scope
    scope_items = _pairs(item for item in scope.split(",") if item.strip())
    tags = _pairs(data["tags"])
    priority_match = _PRIORITY.fullmatch(priority.strip())
    fingerprint = _fingerprint(data, scope=scope.strip())
    alert = build_alert(
        asset_name=data["host"]
        or data["hostname"]
        or tags.get("host")
        or scope_items.get("host")
        or next(iter(scope_items.values()), ""),
        signature=monitor_name,
        severity=SEVERITY_BY_PRIORITY[priority_match[1]] if priority_match else default_severity,
        message=data["text_only_msg"] or _MARKDOWN_MARKERS.sub("", data["body"]) or title,
        tool_source=TOOL_SOURCE,
        status=status,
        fingerprint=fingerprint,
        event_time=data["date"],
        labels={**scope_items, **tags},
        raw=payload,
        occurrence=f"{fingerprint}\x1f{REPEATED_STATES.get(state, state)}"
        if fingerprint != data["id"]
        else "",
    )
    return ParseResult(alerts=[alert])


def _split_title(title: str) -> tuple[list[str], str]:
    """Split the bracketed prefixes ("[P1]", "[Triggered on {host:a}]") off a title."""
    prefixes = []
    position = 0
    while match := _BRACKETED.match(title, position):
        prefixes.append(match[1].strip())
        position = match.end()
    return prefixes, title[position:].strip()


def _state(transition: str, *, title: str) -> tuple[str, str]:
    accepted = ", ".join(state.title() for state in STATES)
    if not transition:
        raise AdapterError(
            f"Cannot tell the state of the Datadog alert {title!r}: the title has no "
            f"[{accepted}] prefix and there is no alert_transition field.",
            fields={"alert_transition": [f"Expected one of {accepted}."]},
        )
    state = STATES.get(transition.strip().lower())
    if state is None:
        raise AdapterError(
            f"Unknown Datadog alert state {transition!r}: expected one of {accepted}.",
            fields={"alert_transition": [f"Expected one of {accepted}."]},
        )
    return state


def _pairs(items: Iterable[str]) -> dict[str, str]:
    """Read "key:value" items; an item without a colon maps to ""."""
    pairs: dict[str, str] = {}
    for item in items:
        key, _, value = item.strip().partition(":")
        pairs.setdefault(key, value)
    return pairs


def _fingerprint(data: dict, *, scope: str) -> str:
    if data["alert_cycle_key"]:
        return data["alert_cycle_key"]
    link = _MONITOR_LINK.search(data["body"])
    monitor_id = data["alert_id"] or (link[1] if link else "")
    if monitor_id:
        return f"{monitor_id}|{scope}" if scope else monitor_id
    return data["id"]
