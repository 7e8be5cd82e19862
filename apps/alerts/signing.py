"""Webhook signatures: ``X-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Timestamp>.<body>")>``.

A signature is accepted once: ``admission`` remembers its first accepted use for longer than
the timestamp tolerance, so a captured request cannot be replayed. The one exception is an
exact retry of a delivery that carries the same ``X-Delivery-ID`` as the first use: it is
let through to the idempotency check, which answers with the first delivery's alerts and
stores nothing (a tool retrying after a lost response must not be refused). The memory lives
in Redis and a restart empties it, so a signature stamped before the memory began is refused
as well: it cannot be proven unused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from apps.common.errors import AuthenticationError

TOLERANCE_SECONDS = 300
REPLAY_MEMORY_SECONDS = 2 * TOLERANCE_SECONDS + 60
# When the replay memory began (Unix seconds, Redis's clock): set by the first signed request
# that finds it missing, i.e. after Redis restarted empty. A signature stamped before it may
# have been accepted and forgotten, so it is refused.
REPLAY_EPOCH_KEY = "aw:hmac-epoch"
PREFIX = "sha256="


@dataclass(frozen=True, slots=True)
class Replay:
    """How the replay memory knows this signature: its key, and the value stored there."""

    key: str
    marker: str
    # An exact retry of the same delivery (same X-Delivery-ID) may pass.
    retry: bool
    # X-Timestamp: a signature stamped before the memory began cannot be proven unused.
    sent_at: int


def verify_signature(
    *,
    company_id: int,
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    delivery_id: str,
    now: float | None = None,
) -> Replay:
    """Raise AuthenticationError (401) naming the problem unless the request is signed;
    return what the replay check needs."""
    timestamp = headers.get("X-Timestamp", "")
    signature = headers.get("X-Signature", "")
    if not timestamp or not signature:
        missing = [h for h, v in (("X-Signature", signature), ("X-Timestamp", timestamp)) if not v]
        raise AuthenticationError(
            f"This company requires signed webhooks: missing {' and '.join(missing)} header.",
            code="signature_missing",
        )
    # int() would also take "1_796161723", " 17…", "+17…" and non-ASCII digits: each would
    # sign a different string for the same time.
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise AuthenticationError(
            "X-Timestamp must be Unix time in whole seconds (ASCII digits only).",
            code="signature_invalid",
        )
    sent_at = int(timestamp)
    now = time.time() if now is None else now
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        raise AuthenticationError(
            f"X-Timestamp is {int(abs(now - sent_at))} s from the server clock; "
            f"signatures are valid for {TOLERANCE_SECONDS} s.",
            code="signature_expired",
        )
    if not signature.startswith(PREFIX):
        raise AuthenticationError(
            "X-Signature must look like sha256=<hex digest>.", code="signature_invalid"
        )
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature[len(PREFIX) :].strip().lower()):
        raise AuthenticationError(
            'X-Signature does not match the body: sign f"{X-Timestamp}.{raw body}" '
            "with HMAC-SHA256 and the company's secret.",
            code="signature_invalid",
        )
    return Replay(
        key=f"aw:hmac-seen:{company_id}:{expected}",
        marker=f"delivery:{delivery_id}" if delivery_id else "used",
        retry=bool(delivery_id),
        sent_at=sent_at,
    )
