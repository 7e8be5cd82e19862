"""Creating, switching and removing notification channels."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.accounts.permissions import Action, can
from apps.common import crypto
from apps.notifications.channels import new_secret, set_target
from apps.notifications.models import Channel, ChannelKind


@transaction.atomic
def channel_create(*, actor: Any, data: dict[str, Any]) -> tuple[Channel, str]:
    """A new channel from the form's cleaned data; returns it and, for a webhook, its
    signing secret (shown once, stored encrypted)."""
    company = data.get("company")
    channel = Channel(
        owner=None if company else actor,
        company=company,
        created_by=actor,
        kind=data["kind"],
        name=data["name"],
        min_severity=data["min_severity"],
        kinds=list(data.get("kinds") or []),
        quiet_start=data.get("quiet_start"),
        quiet_end=data.get("quiet_end"),
        critical_overrides_quiet=bool(data.get("critical_overrides_quiet")),
    )
    set_target(channel, data["target"])
    secret = ""
    if channel.kind == ChannelKind.WEBHOOK:
        secret = new_secret()
        channel.secret_encrypted = crypto.encrypt(secret)
    channel.save()
    if not company and data.get("companies"):
        channel.companies.set(data["companies"])
    return channel, secret


def managed_by(channel: Channel, user: Any) -> bool:
    """May ``user`` change ``channel``: their own, or a company channel of a company they
    administer (MSP admins: every company)."""
    if channel.owner_id is not None:
        return channel.owner_id == user.pk
    return can(user, Action.MANAGE_COMPANY, channel.company_id)


@transaction.atomic
def channel_update(*, channel: Channel, data: dict[str, Any]) -> Channel:
    """Apply the edit form's cleaned data; an empty target keeps the current one."""
    for name in ("name", "min_severity", "quiet_start", "quiet_end"):
        setattr(channel, name, data.get(name))
    channel.kinds = list(data.get("kinds") or [])
    channel.critical_overrides_quiet = bool(data.get("critical_overrides_quiet"))
    if data.get("target"):
        set_target(channel, data["target"])
        channel.failing_since = None
        channel.last_error = ""
    channel.save()
    if channel.owner_id is not None:
        channel.companies.set(data.get("companies") or [])
    return channel
