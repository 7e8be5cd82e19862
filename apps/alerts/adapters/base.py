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

from collections.abc import Mapping
from dataclasses import dataclass
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
    # Set (with ``alerts`` empty) for SNS SubscriptionConfirmation/UnsubscribeConfirmation:
    # {"type", "topic_arn", "token", "subscribe_url", "region"}.
    subscription_confirmation: dict | None = None
    # The adapter that produced it (set by the dispatcher in ``adapters.parse``).
    source: str = ""


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
) -> NormalizedAlert:
    """Build a ``NormalizedAlert``, trimming and truncating values to what we store."""
    clean_signature = signature.strip()[:NAME_MAX_LENGTH]
    if not clean_signature:
        raise AdapterError(
            f"The {tool_source} alert has no name to use as its signature.",
            fields={"signature": ["The alert name is empty."]},
        )
    return NormalizedAlert(
        asset_name=asset_name.strip()[:NAME_MAX_LENGTH] or UNKNOWN_ASSET,
        signature=clean_signature,
        severity=severity,
        message=message.strip()[:MESSAGE_MAX_LENGTH],
        tool_source=tool_source,
        status=status,
        fingerprint=fingerprint.strip()[:NAME_MAX_LENGTH],
        event_time=event_time.astimezone(UTC) if event_time is not None else None,
        labels={str(key): str(value) for key, value in labels.items()},
        raw=raw,
    )


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
