"""Types and helpers shared by the webhook source adapters.

An adapter turns one decoded webhook body into ``NormalizedAlert`` values. Adapters never
touch the database: they validate, map the source's own levels and states onto ours, and
raise ``AdapterError`` (HTTP 400) naming what is wrong, with the same flat error shape
whatever validates them. The two that carry most traffic (Alertmanager with Grafana, and
the generic body) validate with pydantic models, twenty times cheaper than serializers on
a 100-alert body (docs/decisions.md, "Webhook validation"); the others with DRF serializers.

Asset fallback: when a source carries no usable asset name, the alert is filed under
``UNKNOWN_ASSET`` rather than refused, so a tool that cannot name a host still gets its
alert through.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers
from rest_framework.settings import api_settings

from apps.common.errors import ValidationError

SEVERITIES = ("critical", "high", "medium", "low")
UNKNOWN_ASSET = "unknown"

NAME_MAX_LENGTH = 255
MESSAGE_MAX_LENGTH = 4000

# JSON that decodes but cannot be stored (docs/decisions.md, "Poison input"): NUL and lone
# surrogates, which PostgreSQL text and psycopg refuse, become U+FFFD; they can only arrive
# as \u escapes, so the walk that replaces them runs only when the raw text has one. Bodies
# nested deeper than MAX_DEPTH are refused before anything recursive meets them.
MAX_DEPTH = 64
REPLACEMENT_CHARACTER = "\ufffd"
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")

# Severity words used by label-based sources (Prometheus/Alertmanager and Grafana rules, the
# generic body): our four levels plus the usual synonyms found in alerting rules.
SEVERITY_ALIASES: dict[str, str] = {
    "critical": "critical",
    "crit": "critical",
    "page": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "disaster": "critical",
    "high": "high",
    "error": "high",
    "major": "high",
    "medium": "medium",
    "warning": "medium",
    "warn": "medium",
    "average": "medium",
    "moderate": "medium",
    "low": "low",
    "info": "low",
    "informational": "low",
    "minor": "low",
    "none": "low",
    "ok": "low",
}


class AdapterError(ValidationError):
    """The webhook body cannot be turned into alerts (HTTP 400)."""

    code = "invalid_payload"


@dataclass(frozen=True, slots=True)
class NormalizedAlert:
    asset_name: str
    signature: str
    severity: str
    message: str
    tool_source: str
    status: str
    fingerprint: str
    event_time: datetime | None
    labels: dict[str, str]
    raw: dict
    # What was changed to store it (an event time out of range, say), in plain words.
    warnings: tuple[str, ...] = ()
    # What stays the same across re-notifications of this occurrence of the alert (with the
    # status, its identity: docs/decisions.md, "Repeat notifications"); "" for none.
    occurrence: str = ""


@dataclass(frozen=True)
class AdapterOptions:
    """Per-company parsing choices.

    ``asset_label`` names the label that holds the asset for label-based sources
    (Alertmanager, Grafana); see ``asset_from_labels`` for the fallbacks.
    """

    asset_label: str = "instance"


@dataclass(frozen=True)
class ParseResult:
    alerts: list[NormalizedAlert]
    # Alerts of a batch body refused one by one: {"index": n, "errors": {field: [...]}}.
    rejected: list[dict] = field(default_factory=list)
    # Set (with ``alerts`` empty) for SNS SubscriptionConfirmation/UnsubscribeConfirmation:
    # {"type", "topic_arn", "token", "subscribe_url", "region"}.
    subscription_confirmation: dict | None = None
    # The adapter that produced it (set by the dispatcher in ``adapters.parse``).
    source: str = ""
    # What the source's protocol expects in the answer (PagerDuty's ``dedup_key``).
    reply: dict = field(default_factory=dict)
    # A fingerprint whose open incident the tool acknowledges (a PagerDuty acknowledge).
    acknowledge: str = ""


class Adapter(Protocol):
    """What each adapter module provides."""

    def detect(self, payload: dict, headers: Mapping[str, str]) -> bool: ...

    def parse(
        self, payload: dict, *, headers: Mapping[str, str], options: AdapterOptions
    ) -> ParseResult: ...


def build_alert(
    *,
    asset_name: str,
    signature: str,
    severity: str,
    message: str,
    tool_source: str,
    status: str,
    fingerprint: str,
    event_time: datetime | None,
    labels: Mapping[str, Any],
    raw: dict,
    occurrence: str = "",
) -> NormalizedAlert:
    """Build a ``NormalizedAlert``, trimming and truncating values to what we store."""
    clean_signature = signature.strip()[:NAME_MAX_LENGTH]
    if not clean_signature:
        raise AdapterError(
            f"The {tool_source} alert has no name to use as its signature.",
            fields={"signature": ["The alert name is empty."]},
        )
    utc_time, warnings = _in_utc(event_time)
    return NormalizedAlert(
        asset_name=asset_name.strip()[:NAME_MAX_LENGTH] or UNKNOWN_ASSET,
        signature=clean_signature,
        severity=severity,
        message=message.strip()[:MESSAGE_MAX_LENGTH],
        tool_source=tool_source,
        status=status,
        fingerprint=fingerprint.strip()[:NAME_MAX_LENGTH],
        event_time=utc_time,
        labels={str(key): str(value) for key, value in labels.items()},
        raw=raw,
        warnings=warnings,
        occurrence=occurrence,
    )


def _in_utc(event_time: datetime | None) -> tuple[datetime | None, tuple[str, ...]]:
    """The event time in UTC, or None with a warning when UTC cannot hold it (year 1 with a
    positive offset, year 9999 with a negative one)."""
    if event_time is None:
        return None, ()
    try:
        return event_time.astimezone(UTC), ()
    except OverflowError:
        return None, (
            f"The event time {event_time.isoformat()} is out of range; "
            "the time of receipt was used.",
        )


def load_json(text: str, *, what: str = "The request body") -> Any:
    """``text`` decoded as JSON we can store, or AdapterError saying what is wrong with it:
    not JSON, NaN or a number too large for a float (1e400), an integer of more digits than
    Python reads, nesting deeper than MAX_DEPTH. NUL and lone surrogates become U+FFFD."""
    try:
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise AdapterError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            code="malformed_json",
        ) from exc
    except RecursionError as exc:
        raise _too_deep(what) from exc
    except ValueError as exc:
        # Python refuses integers of more than 4,300 digits (sys.get_int_max_str_digits).
        raise AdapterError(
            f"{what} holds an integer of more than {sys.get_int_max_str_digits()} digits.",
            code="malformed_json",
        ) from exc
    if _nests_deeper(text):
        # Every reader after this one (psycopg, the admin page) recurses deeper in the stack.
        raise _too_deep(what)
    if _SUSPECT_ESCAPE.search(text):
        _scrub(payload)
    return payload


def _reject_constant(name: str) -> None:
    raise AdapterError(f"The JSON holds {name}, which is not valid JSON.", code="malformed_json")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise AdapterError(
            f"The JSON holds the number {text[:40]}, too large to store.", code="malformed_json"
        )
    return value


def _too_deep(what: str) -> AdapterError:
    return AdapterError(
        f"{what} is nested more than {MAX_DEPTH} levels deep.", code="malformed_json"
    )


def _nests_deeper(text: str) -> bool:
    """Whether valid JSON ``text`` nests deeper than MAX_DEPTH, read from its brackets
    outside strings with bytes operations only (a fifth of json.loads on a 100-alert body,
    about a microsecond on a small one): escaped backslashes and quotes go, then everything
    but brackets (all made square) and quotes, then the strings; each pass removes the
    innermost pairs."""
    raw = text.encode("utf-8", "surrogatepass")
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Strings without brackets are "" now; removing those first leaves few for the regex.
    brackets = raw.translate(_SQUARE, _NOT_STRUCTURE).replace(b'""', b"")
    if len(brackets) <= 2 * MAX_DEPTH:
        return False
    if b'"' in brackets:
        brackets = _STRING.sub(b"", brackets)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _scrub(payload: Any) -> None:
    """Replace unstorable characters in the keys and strings of a decoded body, in place and
    without recursion."""
    stack = [payload]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in list(node.items()):
                clean = _UNSTORABLE.sub(REPLACEMENT_CHARACTER, key)
                if clean != key:
                    del node[key]
                node[clean] = _checked(value, stack)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                node[index] = _checked(value, stack)


def _checked(value: Any, stack: list[Any]) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT_CHARACTER, value)
    if isinstance(value, dict | list):
        stack.append(value)
    return value


def asset_from_labels(labels: Mapping[str, str], *, options: AdapterOptions) -> str:
    """The asset named by ``options.asset_label``, else host, hostname, instance, job."""
    for name in (options.asset_label, "host", "hostname", "instance", "job"):
        value = labels.get(name, "").strip()
        if value:
            return value
    return UNKNOWN_ASSET


def flatten_errors(detail: Any, *, path: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested serializer errors into {"a.b.0.c": ["message", ...]}.

    A nested object's own errors (DRF's non-field errors) are filed under the object's path.
    """
    flat: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            for name, messages in flatten_errors(value, path=_join(path, key)).items():
                flat.setdefault(name, []).extend(messages)
    elif isinstance(detail, list) and all(isinstance(item, str) for item in detail):
        if detail:
            flat[path or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            flat.update(flatten_errors(item, path=_join(path, index)))
    else:
        flat[path or api_settings.NON_FIELD_ERRORS_KEY] = [str(detail)]
    return flat


def _join(path: str, key: str | int) -> str:
    if not path:
        return str(key)
    if key == api_settings.NON_FIELD_ERRORS_KEY:
        return path
    return f"{path}.{key}"


def validate_payload(
    serializer_class: type[serializers.Serializer], data: Any, *, source: str, path: str = ""
) -> dict:
    """Run a serializer over ``data`` and return its validated data, or raise AdapterError.

    ``path`` prefixes the error keys when ``data`` sits inside a larger body.
    """
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    fields = flatten_errors(serializer.errors, path=path)
    problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
    raise AdapterError(f"Invalid {source} payload: {problems}", fields=fields)


def utc_datetime_field(**kwargs: Any) -> serializers.DateTimeField:
    """An ISO 8601 datetime field that reads naive values as UTC and returns aware UTC."""
    return serializers.DateTimeField(default_timezone=UTC, **kwargs)


class AdapterModel(BaseModel):
    """Base of the adapters' pydantic models, set to read values as the serializers do:
    strings trimmed, numbers accepted as strings, unknown keys ignored."""

    model_config = ConfigDict(str_strip_whitespace=True, coerce_numbers_to_str=True)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


ModelT = TypeVar("ModelT", bound=BaseModel)

# An ISO 8601 date-time (or Unix time); a value without an offset is read as UTC.
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

# pydantic's wording for a missing key, in the serializers' words.
_MESSAGES = {"missing": "This field is required."}


def validate_model(model: type[ModelT], data: Any, *, source: str) -> ModelT:
    """``validate_payload`` for a pydantic model: the model, or AdapterError with the same
    flat {"a.b.0.c": [message]} fields."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        fields: dict[str, list[str]] = {}
        for error in exc.errors(include_url=False):
            name = ".".join(str(part) for part in error["loc"]) or api_settings.NON_FIELD_ERRORS_KEY
            fields.setdefault(name, []).append(_MESSAGES.get(error["type"], error["msg"]))
    problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
    raise AdapterError(f"Invalid {source} payload: {problems}", fields=fields)
