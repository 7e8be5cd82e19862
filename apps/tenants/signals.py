"""Every saved or deleted company or API key (services, Django admin, a cascade) makes the
webhook's cached key lookups stale at once, through the keys generation."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.tenants.models import ApiKey, Company
from apps.tenants.services import keys_changed


@receiver(post_save, sender=Company)
@receiver(post_delete, sender=Company)
@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def _company_or_key_changed(sender: type, **kwargs: Any) -> None:
    keys_changed()
