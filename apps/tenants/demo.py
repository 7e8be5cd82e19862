"""The embedded demo (`make run`, ``DEMO_MODE``): webhook keys the MSP admin can read again,
AWS calls that go to a local emulator (moto), and a day of alert history sent through the
real ingest and correlation path (the last two in ``demo_seed``, used by ``seed_demo``).

Demo webhook keys are derived from ``SECRET_KEY`` and the company's slug, so they are never
stored in clear: the company page re-derives the key and shows it only while the company's
active key is still that one (a regenerated key is shown once, as always).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from apps.tenants.models import ApiKey, Company
from apps.tenants.services import API_KEY_PREFIX, _hash_key, keys_changed

SIMULATED_AWS = "Simulated AWS (demo)"


def simulated_aws() -> bool:
    return bool(settings.DEMO_MODE and settings.AWS_ENDPOINT_URL)


def frame(request: HttpRequest) -> dict:
    """Context processor: every page says when AWS is the demo's emulator."""
    return {"simulated_aws": simulated_aws(), "simulated_aws_label": SIMULATED_AWS}


# --- webhook keys ----------------------------------------------------------------------------
def demo_api_key(company: Company) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"demo-webhook-key:{company.slug}".encode(), hashlib.sha256
    ).digest()
    secret = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return f"{API_KEY_PREFIX}{digest[:4].hex()}_{secret}"


def demo_key_install(company: Company) -> str:
    """Make the company's active key its demo key; returns the key."""
    raw_key = demo_api_key(company)
    prefix = raw_key[len(API_KEY_PREFIX) :].partition("_")[0]
    ApiKey.objects.update_or_create(
        company=company,
        revoked_at=None,
        defaults={"prefix": prefix, "key_hash": _hash_key(raw_key)},
    )
    keys_changed()
    return raw_key


def demo_key_shown(company: Company, active: ApiKey | None) -> str:
    """The demo key, in demo mode and while it is the company's active key; else ""."""
    if not settings.DEMO_MODE or active is None:
        return ""
    raw_key = demo_api_key(company)
    return raw_key if constant_time_compare(active.key_hash, _hash_key(raw_key)) else ""
