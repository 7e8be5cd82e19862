"""Writes of the chat: posting a message, read states, presence, and the live pushes.

Pushes go to Channels groups as rendered partials, after commit: ``chat_<company id>`` (the
sockets of that company's room) gets new messages and the online list; ``chat_rooms_<id>``
(members of the company in any room) and ``chat_rooms_msp`` (MSP admins) get a bare signal
that the company's room has something new, so a page showing another room re-fetches its
own rooms list with its own unread counts.
"""

from __future__ import annotations

import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.permissions import Action, can
from apps.chat import presence, selectors
from apps.chat.models import MAX_BODY_LENGTH, ChatMessage, ChatReadState
from apps.common import errors
from apps.tenants.models import Company

RATE_LIMIT_MESSAGES = 10
RATE_LIMIT_WINDOW_SECONDS = 10
ROOMS_MSP_GROUP = "chat_rooms_msp"


def room_group(company_id: int) -> str:
    return f"chat_{company_id}"


def rooms_group(company_id: int) -> str:
    return f"chat_rooms_{company_id}"


def _send(group: str, event: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(group, event)


def _clean_body(body: str) -> str:
    text = body.replace("\r\n", "\n").strip()
    if not text:
        raise errors.ValidationError("Write a message first.", fields={"body": ["Required."]})
    if len(text) > MAX_BODY_LENGTH:
        message = f"Messages are at most {MAX_BODY_LENGTH} characters."
        raise errors.ValidationError(message, fields={"body": [message]})
    if "\x00" in text:
        message = "The message contains a null character."
        raise errors.ValidationError(message, fields={"body": [message]})
    return text


def _take_post_slot(*, user_id: int) -> bool:
    """At most ``RATE_LIMIT_MESSAGES`` per user per window (an atomic counter in the
    cache: Redis in production, shared by every process; local memory when embedded)."""
    window = int(time.time() // RATE_LIMIT_WINDOW_SECONDS)
    key = f"chat:rate:{user_id}:{window}"
    cache.add(key, 0, timeout=RATE_LIMIT_WINDOW_SECONDS * 2)
    return cache.incr(key) <= RATE_LIMIT_MESSAGES


def chat_message_post(
    *, company: Company, author: User, body: str, incident_id: int | None = None
) -> ChatMessage:
    """Store a message in ``company``'s room and push it to the room after commit.
    ``incident_id`` links the message to an incident of that company; any other id is
    ignored."""
    if not can(author, Action.VIEW, company):
        raise errors.PermissionDenied("You are not a member of this company.")
    text = _clean_body(body)
    if not _take_post_slot(user_id=author.pk):
        raise errors.RateLimited(
            f"Slow down: at most {RATE_LIMIT_MESSAGES} messages in "
            f"{RATE_LIMIT_WINDOW_SECONDS} seconds."
        )
    incident = (
        selectors.chat_incident_for(company_id=company.pk, incident_id=incident_id)
        if incident_id is not None
        else None
    )
    with transaction.atomic():
        message = ChatMessage.objects.create(
            company=company, author=author, body=text, incident=incident
        )
        chat_mark_read(user_id=author.pk, company_id=company.pk, upto_message_id=message.pk)
        transaction.on_commit(lambda: chat_message_broadcast(message_id=message.pk))
    return message


def chat_message_broadcast(*, message_id: int) -> None:
    message = selectors.chat_message_for_broadcast(message_id=message_id)
    company_id = message.company_id
    html = render_to_string("chat/partials/_messages_push.html", {"messages": [message]})
    _send(room_group(company_id), {"type": "chat.html", "html": html})
    signal = render_to_string("chat/partials/_rooms_signal.html")
    for group in (rooms_group(company_id), ROOMS_MSP_GROUP):
        _send(group, {"type": "chat.rooms", "company_id": company_id, "html": signal})


def chat_mark_read(*, user_id: int, company_id: int, upto_message_id: int) -> None:
    """The user has seen the room up to ``upto_message_id`` (never moves backwards)."""
    now = timezone.now()
    state, created = ChatReadState.objects.get_or_create(
        user_id=user_id,
        company_id=company_id,
        defaults={"last_read_message_id": upto_message_id, "last_read_at": now},
    )
    if not created and state.last_read_message_id < upto_message_id:
        ChatReadState.objects.filter(pk=state.pk, last_read_message_id__lt=upto_message_id).update(
            last_read_message_id=upto_message_id, last_read_at=now
        )


def _push_online(*, company_id: int, change: presence.Change) -> None:
    if change.changed:
        html = render_to_string(
            "chat/partials/_online.html",
            {"online": selectors.chat_users(user_ids=change.online), "oob": True},
        )
        _send(room_group(company_id), {"type": "chat.html", "html": html})


def chat_presence_touch(*, company_id: int, user_id: int, connection: str) -> None:
    """A socket of the room connected or sent its heartbeat; the room learns of anyone who
    came online or whose connections expired meanwhile."""
    change = presence.presence_touch(company_id=company_id, user_id=user_id, connection=connection)
    _push_online(company_id=company_id, change=change)


def chat_presence_leave(*, company_id: int, user_id: int, connection: str) -> None:
    change = presence.presence_leave(company_id=company_id, user_id=user_id, connection=connection)
    _push_online(company_id=company_id, change=change)
