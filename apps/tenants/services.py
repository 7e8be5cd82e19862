"""Companies, API keys, HMAC secrets, assets and maintenance windows. Every change is audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.common import crypto
from apps.common.redis import get_redis
from apps.tenants.models import ApiKey, Asset, Company, MaintenanceWindow

API_KEY_PREFIX = "aw_"
# Local lookups are also re-read after this long, should a generation change be missed
# (Redis flushed right after a change, say).
API_KEY_LOCAL_SECONDS = 30
KEYS_GENERATION = "aw:api-keys-generation"


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A found API key: its hash, its company, and the generation it was read under."""

    key_hash: str
    company: Company
    generation: str
    loaded_at: float


# Per process: prefix -> entry. Webhooks are the hottest path; the generation check that
# keeps these current costs nothing extra there (it rides on the rate-limit round trip).
_local_keys: dict[str, KeyEntry] = {}


def keys_generation() -> str:
    """Changes (to a new random value) after every change to a company or its keys."""
    if settings.REDIS_URL:
        value = get_redis().get(KEYS_GENERATION)
        return value.decode() if value else ""
    return cache.get(KEYS_GENERATION, "")


def keys_changed() -> None:
    """Now, and again after commit: a lookup between the two may read the data as it was
    before the commit, under the first new generation, and the second one retires it. (A
    lookup reads the generation first, then the database.)"""
    _new_generation()
    transaction.on_commit(_new_generation)


def _new_generation() -> None:
    token = secrets.token_hex(8)
    if settings.REDIS_URL:
        get_redis().set(KEYS_GENERATION, token)
    else:
        cache.set(KEYS_GENERATION, token, None)


def _new_api_key(*, company: Company, actor: Any) -> str:
    prefix = secrets.token_hex(4)
    raw_key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    ApiKey.objects.create(
        company=company,
        prefix=prefix,
        key_hash=_hash_key(raw_key),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    return raw_key


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "company"
    slug, n = base, 2
    while Company.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def company_create(*, company: Company, actor: Any = None) -> tuple[Company, str]:
    """Save a new ``company`` (an unsaved, validated instance) and issue its first API key.

    Returns the company and the raw API key, which is never retrievable again.
    """
    if not company.slug:
        company.slug = _unique_slug(company.name)
    company.save()
    raw_key = _new_api_key(company=company, actor=actor)
    record(
        action=AuditAction.COMPANY_CREATED,
        actor=actor,
        company=company,
        target=company,
        details={"name": company.name},
    )
    return company, raw_key


@transaction.atomic
def company_update(*, company: Company, changed: list[str], actor: Any = None) -> Company:
    """Save edits to ``company``; ``changed`` names the fields that changed (audited)."""
    company.save()
    if changed:
        record(
            action=AuditAction.CONFIG_CHANGED,
            actor=actor,
            company=company,
            target=company,
            details={"changed": {f: _jsonable(getattr(company, f)) for f in sorted(changed)}},
        )
    return company


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


@transaction.atomic
def api_key_regenerate(*, company: Company, actor: Any = None) -> str:
    """Revoke the company's active key (it stops working at once) and issue a new one."""
    old_prefixes = list(
        ApiKey.objects.select_for_update()
        .filter(company=company, revoked_at__isnull=True)
        .values_list("prefix", flat=True)
    )
    ApiKey.objects.filter(company=company, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    raw_key = _new_api_key(company=company, actor=actor)
    keys_changed()  # update() sends no signal
    record(
        action=AuditAction.API_KEY_REGENERATED,
        actor=actor,
        company=company,
        target=company,
        details={"revoked_prefixes": old_prefixes},
    )
    return raw_key


def api_key_entry(raw_key: str, *, fresh: bool = False) -> KeyEntry | None:
    """The active key ``raw_key`` of an active company, from this process's memory or the
    database (``fresh``: always the database), or None.

    The key is found by its visible prefix and its hash compared in constant time. The
    caller must check that ``generation`` is still current: the webhook does it in the
    same Redis call as its rate limit (``apps.alerts.admission``).
    """
    if not raw_key or not raw_key.startswith(API_KEY_PREFIX) or len(raw_key) > 200:
        return None
    prefix, _, _ = raw_key[len(API_KEY_PREFIX) :].partition("_")
    entry = None if fresh else _local_keys.get(prefix)
    if entry is None or time.monotonic() - entry.loaded_at > API_KEY_LOCAL_SECONDS:
        generation = keys_generation()
        key = (
            ApiKey.objects.select_related("company")
            .filter(prefix=prefix, revoked_at__isnull=True, company__is_active=True)
            .first()
        )
        if key is None:
            _local_keys.pop(prefix, None)
            return None
        entry = KeyEntry(key.key_hash, key.company, generation, time.monotonic())
        _local_keys[prefix] = entry
    if not hmac.compare_digest(entry.key_hash, _hash_key(raw_key)):
        return None
    return entry


@transaction.atomic
def hmac_enable(*, company: Company, actor: Any = None) -> str:
    """Turn on webhook signing with a new secret, returned once."""
    secret = secrets.token_hex(32)
    company.hmac_secret_encrypted = crypto.encrypt(secret)
    company.hmac_enabled = True
    company.save(update_fields=["hmac_secret_encrypted", "hmac_enabled", "updated_at"])
    record(action=AuditAction.HMAC_ENABLED, actor=actor, company=company, target=company)
    return secret


def hmac_secrets_reencrypt() -> int:
    """Encrypt every stored HMAC secret again under the newest FIELD_ENCRYPTION_KEYS key
    (after a new key was put first); returns how many were rewritten."""
    rewritten = 0
    companies = Company.objects.exclude(hmac_secret_encrypted="").only("hmac_secret_encrypted")
    for company in companies.iterator():
        with transaction.atomic():
            locked = Company.objects.select_for_update().only("hmac_secret_encrypted")
            current = locked.get(pk=company.pk).hmac_secret_encrypted
            if not current:
                continue
            Company.objects.filter(pk=company.pk).update(
                hmac_secret_encrypted=crypto.reencrypt(current)
            )
            rewritten += 1
    return rewritten


@transaction.atomic
def hmac_disable(*, company: Company, actor: Any = None) -> None:
    company.hmac_secret_encrypted = ""
    company.hmac_enabled = False
    company.save(update_fields=["hmac_secret_encrypted", "hmac_enabled", "updated_at"])
    record(action=AuditAction.HMAC_DISABLED, actor=actor, company=company, target=company)


def companies_in_maintenance(
    *, companies: Iterable[Company], at: datetime | None = None
) -> set[int]:
    """Which of these companies are inside one of their maintenance windows (one query)."""
    at = at or timezone.now()
    by_id = {company.pk: company for company in companies}
    return {
        window.company_id
        for window in MaintenanceWindow.objects.filter(company_id__in=list(by_id))
        if window.is_active(at, by_id[window.company_id].tz)
    }


# --- Onboarding, assets and maintenance windows (the company pages) ------------------------

RESERVED_SLUGS = frozenset({"new"})


@transaction.atomic
def company_onboard(
    *,
    company: Company,
    assets: Iterable[Asset] = (),
    windows: Iterable[MaintenanceWindow] = (),
    actor: Any = None,
) -> tuple[Company, str]:
    """Create ``company`` (unsaved, validated) with its first assets and maintenance windows.

    One transaction: nothing is kept if any row fails. Returns the company and its raw API
    key, which is never retrievable again. A slug that would shadow a page of the company
    section ("new") gets a suffix.
    """
    if not company.slug:
        company.slug = _unique_slug(company.name)
        if company.slug in RESERVED_SLUGS:
            company.slug = _unique_slug(f"{company.slug}-company")
    company, raw_key = company_create(company=company, actor=actor)
    assets = list(assets)
    for asset in assets:
        asset.company = company
    if assets:
        Asset.objects.bulk_create(assets)
        record(
            action=AuditAction.ASSET_CHANGED,
            actor=actor,
            company=company,
            target=company,
            details={"created": [asset.name for asset in assets]},
        )
    windows = list(windows)
    for window in windows:
        window.company = company
    if windows:
        MaintenanceWindow.objects.bulk_create(windows)
        record(
            action=AuditAction.MAINTENANCE_CHANGED,
            actor=actor,
            company=company,
            target=company,
            details={"created": [str(window) for window in windows]},
        )
    return company, raw_key


@transaction.atomic
def asset_save(*, asset: Asset, changed: Iterable[str], actor: Any = None) -> Asset:
    """Create or edit ``asset`` (validated, its company set); ``changed`` names the edited
    fields. Audited unless an edit changed nothing."""
    created = asset.pk is None
    changed = sorted(changed)
    asset.save()
    if created or changed:
        record(
            action=AuditAction.ASSET_CHANGED,
            actor=actor,
            company=asset.company,
            target=asset,
            details={"created": created, "changed": changed},
        )
    return asset


@transaction.atomic
def asset_delete(*, asset: Asset, actor: Any = None) -> None:
    record(
        action=AuditAction.ASSET_CHANGED,
        actor=actor,
        company=asset.company,
        target=asset,
        details={"deleted": asset.name},
    )
    asset.delete()


@transaction.atomic
def maintenance_window_create(*, window: MaintenanceWindow, actor: Any = None) -> MaintenanceWindow:
    """Save a new ``window`` (validated, its company set)."""
    window.save()
    record(
        action=AuditAction.MAINTENANCE_CHANGED,
        actor=actor,
        company=window.company,
        target=window,
        details={"created": str(window), "reason": window.reason},
    )
    return window


@transaction.atomic
def maintenance_window_delete(*, window: MaintenanceWindow, actor: Any = None) -> None:
    record(
        action=AuditAction.MAINTENANCE_CHANGED,
        actor=actor,
        company=window.company,
        target=window,
        details={"deleted": str(window), "reason": window.reason},
    )
    window.delete()
