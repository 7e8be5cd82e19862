"""Log-in attempts are limited per client address and per account (10 a minute each), so
passwords cannot be guessed at speed from one place or against one account."""

from __future__ import annotations

from django.http import HttpRequest

from apps.audit.context import client_ip
from apps.common.ratelimit import Decision, take_token

LOGIN_ATTEMPTS_PER_MINUTE = 10


def login_refused(request: HttpRequest, email: str) -> Decision | None:
    """The refusing decision when either bucket is empty, else None."""
    email = email.strip().lower()[:254]
    for bucket in (f"login-ip:{client_ip(request)}", f"login-account:{email}"):
        decision = take_token(
            bucket=bucket,
            rate_per_minute=LOGIN_ATTEMPTS_PER_MINUTE,
            burst=LOGIN_ATTEMPTS_PER_MINUTE,
        )
        if not decision.allowed:
            return decision
    return None


def refusal_message(decision: Decision) -> str:
    return f"Too many log-in attempts. Try again in {decision.retry_after} s."
