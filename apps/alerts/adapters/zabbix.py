"""Zabbix webhook media type.

Zabbix has no fixed payload: a webhook media type's script builds it from its parameters.
This adapter reads the body of our media type, whose script POSTs its parameters as one
JSON object: the parameter names (``event_id``, ``event_value``, ``event_nseverity``,
``host_host``, ...; every value is a string) plus ``event_tags``, the parsed
``{EVENT.TAGSJSON}`` list.

- status: ``event_value`` "1" (problem) -> firing, "0" (recovery) -> resolved.
- updates: ``event_update_status`` "1" (acknowledgement, comment, severity change) yields
  no alert: it is not a new occurrence of the problem.
- event source: only trigger events (``event_source`` "0", or absent) are accepted.
- fingerprint: ``event_id``. In a recovery notification ``{EVENT.ID}`` is still the id of
  the original problem event (``{EVENT.RECOVERY.ID}`` would be the recovery's), so the
  resolved alert carries the fingerprint of the firing one it closes. The event id is also
  the occurrence: an escalation step re-sending the problem updates the stored alert.
- severity: ``event_nseverity`` 0-5 (Not classified, Information, Warning, Average, High,
  Disaster) -> low, low, medium, medium, high, critical; when it is absent the
  ``event_severity`` name is mapped the same way. Anything else is a 400.
- asset: ``host_host`` (the technical host name), else ``host_name`` (the visible name).
- signature: ``event_name``; message: ``alert_message``, else ``alert_subject``, else the
  event name.
- event time: none (the receipt time is used). ``{EVENT.DATE}``/``{EVENT.TIME}`` are in the
  Zabbix server's local time zone, which the payload does not state; Zabbix sends the
  webhook when the event happens, so the receipt time is the more trustworthy instant.
- labels: the event tags (``tag`` -> ``value``; repeated tags are joined with ", ").

A macro Zabbix could not expand stays in the value as literal text. A field this adapter
reads that still holds one (``{HOST.HOST}``, ``{$ZABBIX.URL}``, ...) is refused with code
"unexpanded_macro". Fields it does not read are ignored, so the literal
``{EVENT.RECOVERY.DATE}`` of a problem notification is harmless.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rest_framework import serializers

from .base import AdapterError, AdapterOptions, ParseResult, build_alert, validate_payload

TOOL_SOURCE = "Zabbix"

STATUS_BY_EVENT_VALUE = {"1": "firing", "0": "resolved"}
SEVERITY_BY_NSEVERITY = {
    "0": "low",
    "1": "low",
    "2": "medium",
    "3": "medium",
    "4": "high",
    "5": "critical",
}
SEVERITY_BY_NAME = {
    "not classified": "low",
    "information": "low",
    "warning": "medium",
    "average": "medium",
    "high": "high",
    "disaster": "critical",
}
TRIGGER_EVENT_SOURCE = "0"

# Built-in macros ({HOST.NAME}, {EVENT.RECOVERY.DATE}) and user macros ({$ZABBIX.URL}).
_MACRO = re.compile(r"\{(?:\$[A-Z0-9_.]+|[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+)\}")


class _TagSerializer(serializers.Serializer):
    tag = serializers.CharField()
    value = serializers.CharField(allow_blank=True, required=False, default="")


class ZabbixEventSerializer(serializers.Serializer):
    """The fields this adapter reads; the rest of the body only goes to ``raw``."""

    event_id = serializers.CharField()
    event_name = serializers.CharField()
    event_value = serializers.CharField()
    event_update_status = serializers.CharField(required=False, default="0")
    event_source = serializers.CharField(required=False, default=TRIGGER_EVENT_SOURCE)
    event_nseverity = serializers.CharField(required=False, allow_blank=True, default="")
    event_severity = serializers.CharField(required=False, allow_blank=True, default="")
    host_host = serializers.CharField(required=False, allow_blank=True, default="")
    host_name = serializers.CharField(required=False, allow_blank=True, default="")
    alert_subject = serializers.CharField(required=False, allow_blank=True, default="")
    alert_message = serializers.CharField(required=False, allow_blank=True, default="")
    event_tags = _TagSerializer(many=True, required=False, default=list)


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return "event_id" in payload and "event_value" in payload


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    data = validate_payload(ZabbixEventSerializer, payload, source="Zabbix")
    if _expanded(data, "event_update_status") == "1":
        return ParseResult(alerts=[])
    event_source = _expanded(data, "event_source")
    if event_source != TRIGGER_EVENT_SOURCE:
        raise AdapterError(
            f"Only Zabbix trigger events (event_source 0) are accepted, got {event_source!r}.",
            fields={"event_source": ["Only trigger events (0) are accepted."]},
        )
    event_value = _expanded(data, "event_value")
    status = STATUS_BY_EVENT_VALUE.get(event_value)
    if status is None:
        raise AdapterError(
            f'Zabbix event_value must be "1" (problem) or "0" (recovery), got {event_value!r}.',
            fields={"event_value": ['Expected "1" (problem) or "0" (recovery).']},
        )
    alert = build_alert(
        asset_name=_expanded(data, "host_host") or _expanded(data, "host_name"),
        signature=_expanded(data, "event_name"),
        severity=_severity(data),
        message=(data["alert_message"] or data["alert_subject"] or data["event_name"]).replace(
            "\r\n", "\n"
        ),
        tool_source=TOOL_SOURCE,
        status=status,
        fingerprint=_expanded(data, "event_id"),
        event_time=None,
        labels=_tags(data["event_tags"]),
        raw=payload,
        occurrence=_expanded(data, "event_id"),
    )
    return ParseResult(alerts=[alert])


def _expanded(data: dict, name: str) -> str:
    """The value of a field this adapter relies on, refused if a macro was left in it."""
    value = data[name]
    macro = _MACRO.search(value)
    if macro:
        raise AdapterError(
            f"Zabbix field {name!r} still holds the macro {macro.group()}: Zabbix could not "
            "expand it. Check the media type parameter and the action that sends it.",
            code="unexpanded_macro",
            fields={name: [f"Unexpanded macro {macro.group()}."]},
        )
    return value


def _severity(data: dict) -> str:
    if data["event_nseverity"]:
        nseverity = _expanded(data, "event_nseverity")
        severity = SEVERITY_BY_NSEVERITY.get(nseverity)
        if severity is None:
            raise AdapterError(
                f"Zabbix event_nseverity must be 0 to 5, got {nseverity!r}.",
                fields={"event_nseverity": ["Expected a number from 0 to 5."]},
            )
        return severity
    name = _expanded(data, "event_severity")
    severity = SEVERITY_BY_NAME.get(name.lower())
    if severity is None:
        accepted = ", ".join(level.title() for level in SEVERITY_BY_NAME)
        problem = f"the severity {name!r}, not one of {accepted}," if name else "no severity"
        raise AdapterError(
            f"The Zabbix body has {problem}: send event_nseverity ({{EVENT.NSEVERITY}}), "
            "which also works for renamed severities.",
            fields={"event_severity": [f"Expected one of {accepted}."]},
        )
    return severity


def _tags(tags: list[dict]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in tags:
        tag, value = item["tag"], item["value"]
        labels[tag] = f"{labels[tag]}, {value}" if tag in labels else value
    return labels
