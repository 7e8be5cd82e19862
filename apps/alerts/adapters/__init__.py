"""Webhook source adapters: decode a request body, find its source, normalize its alerts.

``parse`` is the one entry point. It decodes the body as JSON (UTF-8; ``application/json``
with any charset, no content type at all, or ``text/plain`` for Amazon SNS, which sends
``text/plain; charset=UTF-8``), picks the adapter and returns its ``ParseResult``.

The source comes from the URL (``/api/webhooks/alerts/<source>``; "prometheus" and
"cloudwatch" are accepted as aliases of "alertmanager" and "sns"), or, when the URL names
none, from the body's shape, asking each adapter's ``detect`` in this order: sns (the
``x-amz-sns-message-type`` header or an SNS ``Type``), grafana (``alerts`` with ``orgId``
or version "1"), alertmanager (``alerts`` with version "4"), zabbix (``event_id`` and
``event_value``), datadog (``alert_transition``/``alert_cycle_key``, or ``title`` with
``event_type`` or ``org``), pagerduty (``event_action`` with ``routing_key`` or
``dedup_key``), generic (``asset_name`` and ``signature``).

Adapters receive the headers with lower-case names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from apps.common.errors import NotFound, UnsupportedMediaType

from . import alertmanager, datadog, generic, grafana, pagerduty, sns, zabbix
from .base import Adapter, AdapterError, AdapterOptions, NormalizedAlert, ParseResult, load_json

__all__ = [
    "ADAPTERS",
    "AdapterError",
    "AdapterOptions",
    "NormalizedAlert",
    "ParseResult",
    "decode_body",
    "parse",
]

ADAPTERS: dict[str, Adapter] = {
    "generic": generic,
    "alertmanager": alertmanager,
    "datadog": datadog,
    "zabbix": zabbix,
    "grafana": grafana,
    "sns": sns,
    "pagerduty": pagerduty,
}
SOURCE_ALIASES = {"prometheus": "alertmanager", "cloudwatch": "sns"}
DETECTION_ORDER = ("sns", "grafana", "alertmanager", "zabbix", "datadog", "pagerduty", "generic")

JSON_MEDIA_TYPE = "application/json"
SNS_MEDIA_TYPE = "text/plain"

_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def parse(
    source: str | None,
    *,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str],
    options: AdapterOptions,
) -> ParseResult:
    """Normalize one webhook delivery; ``source`` None means detect it from the body."""
    name = _source_name(source) if source is not None else None
    media_type = _media_type(content_type)
    if name is not None:
        _check_media_type(media_type, source=name)
    payload = decode_body(body)
    lower_headers = {key.lower(): value for key, value in headers.items()}
    if name is None:
        name = _detect(payload, lower_headers)
        _check_media_type(media_type, source=name)
    result = ADAPTERS[name].parse(payload, headers=lower_headers, options=options)
    return dataclasses.replace(result, source=name)


def decode_body(body: bytes) -> dict:
    """The body as a JSON object, or AdapterError naming what is wrong with it."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AdapterError(
            f"The request body is not UTF-8 (invalid byte at offset {exc.start}).",
            code="invalid_encoding",
        ) from exc
    if not text.strip():
        raise AdapterError("The request body is empty: send a JSON object.", code="malformed_json")
    payload = load_json(text)
    if not isinstance(payload, dict):
        raise AdapterError(
            f"The request body must be a JSON object, not {_JSON_KINDS[type(payload)]}."
        )
    return payload


def _accepted_sources() -> str:
    return ", ".join(ADAPTERS)


def _source_name(source: str) -> str:
    name = source.strip().lower()
    name = SOURCE_ALIASES.get(name, name)
    if name not in ADAPTERS:
        raise NotFound(
            f"Unknown alert source {source!r}. Accepted sources: {_accepted_sources()}.",
            code="unknown_source",
        )
    return name


def _media_type(content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ("", JSON_MEDIA_TYPE, SNS_MEDIA_TYPE):
        raise UnsupportedMediaType(
            f"Unsupported content type {media_type!r}: send {JSON_MEDIA_TYPE} "
            f"({SNS_MEDIA_TYPE} is accepted from Amazon SNS only)."
        )
    return media_type


def _check_media_type(media_type: str, *, source: str) -> None:
    if media_type == SNS_MEDIA_TYPE and source != "sns":
        raise UnsupportedMediaType(
            f"Unsupported content type {SNS_MEDIA_TYPE!r} for {source}: send {JSON_MEDIA_TYPE} "
            f"({SNS_MEDIA_TYPE} is accepted from Amazon SNS only)."
        )


def _detect(payload: dict, headers: Mapping[str, str]) -> str:
    for name in DETECTION_ORDER:
        if ADAPTERS[name].detect(payload, headers):
            return name
    raise AdapterError(
        "Could not tell which tool sent this payload. Accepted sources: "
        f"{_accepted_sources()}. Name the source in the URL instead: "
        "/api/webhooks/alerts/<source>, e.g. /api/webhooks/alerts/alertmanager.",
        code="unknown_source",
    )
