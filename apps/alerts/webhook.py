"""The ingest path of one webhook request, in the order ARCHITECTURE.md fixes:
API key → size → HMAC → rate limit → parse → store → 202, correlation after commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.alerts import adapters
from apps.alerts.admission import StaleKey, admit
from apps.alerts.services import alerts_acknowledge, alerts_ingest
from apps.alerts.signing import verify_signature
from apps.alerts.tasks import confirm_sns_subscription
from apps.common.errors import (
    ApplicationError,
    AuthenticationError,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)
from apps.tenants.models import Company
from apps.tenants.services import KeyEntry, api_key_entry, keys_generation

MAX_BODY_BYTES = 1024 * 1024
MAX_DELIVERY_ID_LENGTH = 200
SNS_SOURCES = {"sns", "cloudwatch"}
# Sources whose tool retries a 5xx but not a 429: over the rate limit they get 503 with
# Retry-After instead (docs/decisions.md, "Over the rate limit").
RETRIES_ONLY_5XX = {"alertmanager", "prometheus"}


@dataclass(frozen=True)
class WebhookRequest:
    api_key: str
    source: str | None
    body: bytes
    content_type: str
    headers: Mapping[str, str]


@dataclass
class WebhookResponse:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


def check_size(content_length: str | None) -> None:
    try:
        length = int(content_length or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"The body is {length} bytes; the limit is {MAX_BODY_BYTES} bytes (1 MiB). "
            "Split large batches into several deliveries."
        )


def _is_sns(request: WebhookRequest) -> bool:
    """Whether the SNS adapter parses this request, and so checks Amazon's signature on it:
    the URL names sns (or cloudwatch), or names no source and the SNS header makes detection
    pick SNS. The header alone never does: on any other source it would skip our HMAC."""
    if request.source is None:
        return bool(request.headers.get("x-amz-sns-message-type"))
    return request.source.strip().lower() in SNS_SOURCES


def _retries_only_5xx(request: WebhookRequest) -> bool:
    """Whether the sender is Alertmanager, which retries a 5xx within the same notification
    but gives a 429 up until the next group_interval: the URL names it, or, naming no
    source, its User-Agent ("Alertmanager/0.25.0") does."""
    if request.source is not None:
        return request.source.strip().lower() in RETRIES_ONLY_5XX
    return request.headers.get("User-Agent", "").startswith("Alertmanager/")


def _delivery_id(request: WebhookRequest) -> str:
    delivery_id = request.headers.get("X-Delivery-ID", "").strip()
    if not delivery_id and _is_sns(request):
        delivery_id = request.headers.get("x-amz-sns-message-id", "").strip()
    if len(delivery_id) > MAX_DELIVERY_ID_LENGTH:
        raise ValidationError(
            f"X-Delivery-ID is {len(delivery_id)} characters; at most "
            f"{MAX_DELIVERY_ID_LENGTH} are allowed.",
            code="invalid_delivery_id",
        )
    if not delivery_id.isprintable():
        # NUL and lone surrogates would not even reach the database.
        raise ValidationError(
            "X-Delivery-ID holds a control or unprintable character (NUL, say); "
            "use printable characters.",
            code="invalid_delivery_id",
        )
    return delivery_id


def authenticate(api_key: str) -> KeyEntry:
    """The API key's entry, or 401. It needs no body: the view calls it before reading one,
    so a client without a valid key never holds a server thread while its body trickles."""
    if not api_key:
        raise AuthenticationError(
            "Missing API key: pass it as ?api_key=… or in the X-API-Key header.",
            code="api_key_missing",
        )
    if not (api_key.isascii() and api_key.isprintable()):
        # No key has such characters; NUL would not even reach the database.
        raise AuthenticationError("Unknown or revoked API key.", code="api_key_invalid")
    entry = api_key_entry(api_key)
    if entry is None:
        raise AuthenticationError("Unknown or revoked API key.", code="api_key_invalid")
    return entry


def receive(request: WebhookRequest, *, entry: KeyEntry | None = None) -> WebhookResponse:
    """``entry``: what ``authenticate(request.api_key)`` gave, when the caller asked first."""
    entry = entry or authenticate(request.api_key)
    try:
        return receive_for_company(entry.company, request, generation=entry.generation)
    except StaleKey:
        # The company or its keys changed since this process cached them: read them
        # again; that read is current, so it needs no generation check.
        entry = api_key_entry(request.api_key, fresh=True)
    if entry is None:
        raise AuthenticationError("Unknown or revoked API key.", code="api_key_invalid")
    return receive_for_company(entry.company, request)


def receive_for_company(
    company: Company, request: WebhookRequest, *, generation: str | None = None
) -> WebhookResponse:
    """Everything after the API key, for an authenticated company. ``generation``: the keys
    generation ``company`` was read under (StaleKey if it is no longer current); None when
    the caller holds the company itself."""
    if len(request.body) > MAX_BODY_BYTES:
        check_size(str(len(request.body)))
    delivery_id = _delivery_id(request)
    replay = None
    # SNS deliveries carry Amazon's own signature, verified by the SNS adapter.
    if company.hmac_enabled and not _is_sns(request):
        try:
            replay = verify_signature(
                company_id=company.pk,
                secret=company.hmac_secret,
                body=request.body,
                headers=request.headers,
                delivery_id=delivery_id,
            )
        except AuthenticationError:
            # Refuse on current settings only (HMAC may have been turned off since).
            if generation is not None and keys_generation() != generation:
                raise StaleKey from None
            raise
    try:
        decision = admit(company=company, generation=generation, replay=replay)
    except RateLimited as limited:
        if not _retries_only_5xx(request):
            raise
        raise ServiceUnavailable(
            f"{limited.message} Answered 503: Alertmanager retries 5xx but drops 429.",
            code="rate_limited",
            headers=limited.headers,
        ) from None
    try:
        result = adapters.parse(
            request.source,
            body=request.body,
            content_type=request.content_type,
            headers=request.headers,
            options=adapters.AdapterOptions(asset_label=company.asset_label),
        )
    except ApplicationError as refused:
        # The request took a token: its refusal says what is left, as a 202 would.
        refused.headers = {**decision.headers(), **refused.headers}
        raise
    if result.subscription_confirmation is not None:
        return _subscription(company.pk, result.subscription_confirmation, decision.headers())
    stored = alerts_ingest(
        company=company,
        alerts=result.alerts,
        source=result.source,
        delivery_id=delivery_id,
        received_at=timezone.now(),
    )
    body = {
        "accepted": len(stored.alert_ids),
        "alert_ids": stored.alert_ids,
        "duplicate": stored.duplicate,
        "repeats": stored.repeats,
        "delivery_id": stored.delivery_id,
    }
    body.update(result.reply)
    if result.acknowledge:
        body["acknowledged_incident"] = alerts_acknowledge(
            company=company, source=result.source, fingerprint=result.acknowledge
        )
    if stored.warnings:
        body["warnings"] = stored.warnings
    if result.rejected:
        body["rejected"] = result.rejected
    return WebhookResponse(status=202, body=body, headers=decision.headers())


def _subscription(company_id: int, confirmation: dict, headers: dict[str, str]) -> WebhookResponse:
    if confirmation["type"] != "SubscriptionConfirmation":
        return WebhookResponse(
            status=200,
            body={"accepted": 0, "alert_ids": [], "subscription": "unsubscribed"},
            headers=headers,
        )
    transaction.on_commit(
        lambda: confirm_sns_subscription.delay(
            company_id, confirmation["topic_arn"], confirmation["token"], confirmation["region"]
        )
    )
    return WebhookResponse(
        status=200,
        body={
            "accepted": 0,
            "alert_ids": [],
            "subscription": "confirming",
            "topic_arn": confirmation["topic_arn"],
        },
        headers=headers,
    )
