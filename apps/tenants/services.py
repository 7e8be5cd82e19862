"""Companies, API keys, HMAC secrets, assets and maintenance windows. Every change is audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.tenants.models import ApiKey, Asset, Company, MaintenanceWindow

API_KEY_PREFIX = "aw_"
API_KEY_CACHE_SECONDS = 30


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _api_key_cache_key(prefix: str) -> str:
    return f"apikey:{prefix}"


def _forget_cached_keys(prefixes: list[str]) -> None:
    """Drop cached key lookups now and again after commit, so no request re-caches a
    revoked key between the two."""
    keys = [_api_key_cache_key(p) for p in prefixes]
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))


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
    _forget_cached_keys(_company_key_prefixes(company))
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
    record(
        action=AuditAction.API_KEY_REGENERATED,
        actor=actor,
        company=company,
        target=company,
        details={"revoked_prefixes": old_prefixes},
    )
    _forget_cached_keys(old_prefixes)
    return raw_key


def company_for_api_key(raw_key: str) -> Company | None:
    """The active company whose active API key is ``raw_key``, or None.

    The row is found by the key's visible prefix and the hash compared in constant time;
    found keys are cached for a few seconds (regeneration clears the cache).
    """
    if not raw_key or not raw_key.startswith(API_KEY_PREFIX) or len(raw_key) > 200:
        return None
    prefix, _, _ = raw_key[len(API_KEY_PREFIX) :].partition("_")
    cache_key = _api_key_cache_key(prefix)
    entry = cache.get(cache_key)
    if entry is None:
        key = (
            ApiKey.objects.select_related("company")
            .filter(prefix=prefix, revoked_at__isnull=True, company__is_active=True)
            .first()
        )
        if key is None:
            return None
        entry = (key.key_hash, key.company)
        cache.set(cache_key, entry, API_KEY_CACHE_SECONDS)
    key_hash, company = entry
    if not hmac.compare_digest(key_hash, _hash_key(raw_key)):
        return None
    return company


@transaction.atomic
def hmac_enable(*, company: Company, actor: Any = None) -> str:
    """Turn on webhook signing with a new secret, returned once."""
    secret = secrets.token_hex(32)
    company.hmac_secret = secret
    company.hmac_enabled = True
    company.save(update_fields=["hmac_secret", "hmac_enabled", "updated_at"])
    record(action=AuditAction.HMAC_ENABLED, actor=actor, company=company, target=company)
    _forget_cached_keys(_company_key_prefixes(company))
    return secret


@transaction.atomic
def hmac_disable(*, company: Company, actor: Any = None) -> None:
    company.hmac_secret = ""
    company.hmac_enabled = False
    company.save(update_fields=["hmac_secret", "hmac_enabled", "updated_at"])
    record(action=AuditAction.HMAC_DISABLED, actor=actor, company=company, target=company)
    _forget_cached_keys(_company_key_prefixes(company))


def _company_key_prefixes(company: Company) -> list[str]:
    return list(ApiKey.objects.filter(company=company).values_list("prefix", flat=True))


def company_in_maintenance(*, company: Company, at: datetime | None = None) -> bool:
    at = at or timezone.now()
    tz = company.tz
    return any(w.is_active(at, tz) for w in company.maintenance_windows.all())


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
