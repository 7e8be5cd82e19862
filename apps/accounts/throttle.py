"""Log-in attempts (the log-in page, the admin log-in and the API token exchange) are
limited two ways, so passwords cannot be guessed at speed, and yet nobody who merely knows
an e-mail address can lock its owner out.

- Per client address: 10 attempts a minute over all accounts (a token bucket).
- Per account, with exponential backoff: once an account has had ``FREE_FAILURES``
  consecutive failed attempts (from any addresses), each address that took part in them
  waits ``backoff_seconds(failures)`` after the account's last failure before it may try
  again: 2 s, 4 s, 8 s … up to 15 minutes. While it waits even the right password is not
  checked. An address that has not failed against the account is not held back, so the
  owner logging in from their own address gets in while an attacker hammers from another;
  a successful log-in ends the streak. Failures are forgotten after a day.

The client address is REMOTE_ADDR, or, behind ``TRUSTED_PROXIES`` proxies, the address the
outermost trusted proxy saw (X-Forwarded-For): DRF's own throttles read it the same way
(REST_FRAMEWORK NUM_PROXIES), so a client cannot pick its own address with that header.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from apps.common.ratelimit import take_token

LOGIN_ATTEMPTS_PER_MINUTE = 10
FREE_FAILURES = 5
MAX_BACKOFF_SECONDS = 15 * 60
FAILURE_MEMORY_SECONDS = 24 * 60 * 60


@dataclass(frozen=True, slots=True)
class Refusal:
    retry_after: int


def client_address(request: HttpRequest) -> str:
    return BaseThrottle().get_ident(request) or ""


def backoff_seconds(failures: int) -> int:
    """How long a failing address waits after the account's ``failures``-th failure."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_BACKOFF_SECONDS, 2 ** min(failures - FREE_FAILURES + 1, 32))


def account_retry_after(request: HttpRequest, email: str) -> int:
    """Seconds this request's address must wait before trying ``email`` again (0: none)."""
    count_key, at_key, from_key = _keys(request, email)
    state = cache.get_many([count_key, at_key, from_key])
    if from_key not in state or at_key not in state:
        return 0
    wait = state[at_key] + backoff_seconds(state.get(count_key, 0)) - time.time()
    return max(0, math.ceil(wait))


def login_refused(request: HttpRequest, email: str) -> Refusal | None:
    """A refusal when the address must wait for this account or has no attempt left."""
    wait = account_retry_after(request, email)
    if wait:
        return Refusal(retry_after=wait)
    decision = take_token(
        bucket=f"login-ip:{client_address(request)}",
        rate_per_minute=LOGIN_ATTEMPTS_PER_MINUTE,
        burst=LOGIN_ATTEMPTS_PER_MINUTE,
    )
    if not decision.allowed:
        return Refusal(retry_after=decision.retry_after)
    return None


def login_failed(request: HttpRequest, email: str) -> None:
    count_key, at_key, from_key = _keys(request, email)
    cache.add(count_key, 0, FAILURE_MEMORY_SECONDS)
    cache.incr(count_key)
    cache.touch(count_key, FAILURE_MEMORY_SECONDS)
    cache.set_many({at_key: time.time(), from_key: 1}, FAILURE_MEMORY_SECONDS)


def login_succeeded(email: str) -> None:
    account = _account(email)
    cache.delete_many([f"aw:login-failures:{account}", f"aw:login-failed-at:{account}"])


def refusal_message(refusal: Refusal) -> str:
    return f"Too many log-in attempts. Try again in {refusal.retry_after} s."


def _account(email: str) -> str:
    """The account's cache name: a digest, so addresses are not kept in the cache."""
    normalized = email.strip().lower()[:254]
    return hashlib.sha256(normalized.encode()).hexdigest()[:32]


def _keys(request: HttpRequest, email: str) -> tuple[str, str, str]:
    account = _account(email)
    return (
        f"aw:login-failures:{account}",
        f"aw:login-failed-at:{account}",
        f"aw:login-failed-from:{account}:{client_address(request)}",
    )
