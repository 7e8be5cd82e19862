"""Live updates over Channels.

Groups: ``company_<id>`` (members of that company), ``msp`` (MSP admins, who see every
company) and ``user_<id>``. A change in a company does not push its data: it marks the
company dirty, and at most once per ``COALESCE_SECONDS`` a small signal is sent to the
company's viewers, whose pages then re-fetch their partials with their own filters and
scope. So a storm of 500 alerts is a handful of messages per browser, and no message can
carry data a viewer may not see. Per-user pushes (the notification bell) are rendered
partials swapped in place.
"""

from __future__ import annotations

from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

COALESCE_SECONDS = 1.0
MSP_GROUP = "msp"


def company_group(company_id: int) -> str:
    return f"company_{company_id}"


def user_group(user_id: int) -> str:
    return f"user_{user_id}"


def _pending_key(company_id: int) -> str:
    return f"aw:live-pending:{company_id}"


def company_changed(company_id: int) -> None:
    """Something the company's dashboards show changed; signal them once the transaction
    commits, coalesced."""
    companies_changed([company_id])


def companies_changed(company_ids: list[int]) -> None:
    """``company_changed`` for many companies (a correlation sweep): two cache round trips
    and at most one task, whatever their number."""
    if company_ids:
        transaction.on_commit(lambda: _schedule(company_ids))


def _schedule(company_ids: list[int]) -> None:
    from apps.notifications.tasks import flush_company_signals

    keys = {_pending_key(company_id): company_id for company_id in company_ids}
    already = cache.get_many(keys)
    due = {key: company_id for key, company_id in keys.items() if key not in already}
    if due:
        cache.set_many(dict.fromkeys(due, 1), int(COALESCE_SECONDS * 5))
        flush_company_signals.apply_async((list(due.values()),), countdown=COALESCE_SECONDS)


def send_company_signals(company_ids: list[int]) -> None:
    """A signal to each company's viewers, and one to the MSP admins for all of them, sent
    from one event loop (so over one channel-layer connection, not one per message)."""
    cache.delete_many([_pending_key(company_id) for company_id in company_ids])
    at = timezone.now()
    messages = [(company_group(pk), _signal([pk], at)) for pk in company_ids]
    messages.append((MSP_GROUP, _signal(company_ids, at)))
    async_to_sync(_send_all)(messages)


def _signal(company_ids: list[int], at: datetime) -> str:
    return render_to_string(
        "notifications/partials/_live_signal.html", {"company_ids": company_ids, "at": at}
    )


async def _send_all(messages: list[tuple[str, str]]) -> None:
    layer = get_channel_layer()
    for group, html in messages:
        await layer.group_send(group, {"type": "live.message", "html": html})


def send_to_user(user_id: int, html: str) -> None:
    layer = get_channel_layer()
    async_to_sync(layer.group_send)(user_group(user_id), {"type": "live.message", "html": html})
