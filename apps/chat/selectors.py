"""Reads of the chat: rooms a user may enter, message pages, unread counts, who is online."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from apps.accounts.permissions import Action, can, visible_companies
from apps.chat import presence
from apps.chat.models import ChatMessage, ChatReadState
from apps.incidents.models import Incident
from apps.tenants.models import Company

PAGE_SIZE = 30
CATCH_UP_LIMIT = 100


@dataclass(frozen=True)
class MessagePage:
    messages: list[ChatMessage]
    """Oldest first, as the room shows them."""
    older_than: int | None
    """The id to page back from, when older messages exist."""


def chat_room_for(*, user: Any, slug: str) -> Company | None:
    """The company whose room ``user`` may enter under ``slug`` (any for MSP admins)."""
    company = visible_companies(user).filter(slug=slug).first()
    if company is None or not can(user, Action.VIEW, company):
        return None
    return company


def _messages(company_id: int) -> QuerySet[ChatMessage]:
    return ChatMessage.objects.filter(company_id=company_id).select_related("author", "incident")


def chat_messages_page(*, company_id: int, before: int | None = None) -> MessagePage:
    """The ``PAGE_SIZE`` newest messages (older than ``before`` if given)."""
    messages = _messages(company_id).order_by("-id")
    if before is not None:
        messages = messages.filter(id__lt=before)
    rows = list(messages[: PAGE_SIZE + 1])
    page = rows[:PAGE_SIZE][::-1]
    return MessagePage(messages=page, older_than=page[0].pk if len(rows) > PAGE_SIZE else None)


def chat_messages_after(*, company_id: int, after: int) -> tuple[list[ChatMessage], bool]:
    """Up to ``CATCH_UP_LIMIT`` messages newer than ``after``, oldest first (what a
    reconnecting page missed), and whether there are more."""
    rows = list(_messages(company_id).filter(id__gt=after).order_by("id")[: CATCH_UP_LIMIT + 1])
    return rows[:CATCH_UP_LIMIT], len(rows) > CATCH_UP_LIMIT


def chat_message_for_broadcast(*, message_id: int) -> ChatMessage:
    return ChatMessage.objects.select_related("author", "incident").get(pk=message_id)


def chat_latest_message_id(*, company_id: int) -> int:
    latest = (
        ChatMessage.objects.filter(company_id=company_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return latest or 0


def chat_unread_counts(*, user_id: int, company_ids: Iterable[int]) -> dict[int, int]:
    """Per company: messages by others newer than the user's read state (one query; the
    count per company is a range scan of its newest messages)."""
    last_read = ChatReadState.objects.filter(user_id=user_id, company_id=OuterRef("pk")).values(
        "last_read_message_id"
    )[:1]
    unread = (
        ChatMessage.objects.filter(company_id=OuterRef("pk"), id__gt=OuterRef("last_read"))
        .exclude(author_id=user_id)
        .order_by()
        .values("company_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    rows = (
        Company.objects.filter(pk__in=list(company_ids))
        .order_by()
        .annotate(last_read=Coalesce(Subquery(last_read), Value(0)))
        .annotate(unread=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)))
        .values_list("pk", "unread")
    )
    return {pk: n for pk, n in rows if n}


def chat_users(*, user_ids: Iterable[int]) -> list[User]:
    ids = list(user_ids)
    if not ids:
        return []
    return list(User.objects.filter(pk__in=ids, is_active=True).order_by("full_name", "email"))


def chat_online_users(*, company_id: int) -> list[User]:
    return chat_users(user_ids=presence.presence_online(company_id=company_id))


def chat_incident_for(*, company_id: int, incident_id: int) -> Incident | None:
    """The incident if it belongs to the room's company (anything else is ignored)."""
    return Incident.objects.filter(company_id=company_id, pk=incident_id).first()
