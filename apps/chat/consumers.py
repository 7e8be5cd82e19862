"""The socket of one company's chat room (``/ws/chat/<slug>/``).

The browser sends JSON: the post form's values (``{"body", "incident"?, "HEADERS"}``, as
the htmx ws extension sends them), ``{"type": "heartbeat", "seen": <newest message id on
screen, 0 while the tab is hidden>}`` every ``presence.HEARTBEAT_SECONDS``, and ``{"type":
"sync", "after": <id>}`` once connected, to get what it missed before. It receives rendered
partials only. Anonymous sockets are closed with 4401, a room the user may not see with
4403; nothing is joined before those checks.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.accounts.models import User
from apps.accounts.permissions import is_msp_admin, member_company_ids
from apps.chat import selectors, services
from apps.common import errors
from apps.tenants.models import Company

UNAUTHENTICATED = 4401
FORBIDDEN = 4403


def _room_and_groups(user: Any, slug: str) -> tuple[Company, list[str]] | None:
    """The room's company and the groups its socket joins: the room, and the rooms-changed
    signals of every company the user may see."""
    company = selectors.chat_room_for(user=user, slug=slug)
    if company is None:
        return None
    if is_msp_admin(user):
        signals = [services.ROOMS_MSP_GROUP]
    else:
        signals = [services.rooms_group(cid) for cid in sorted(member_company_ids(user))]
    return company, [services.room_group(company.pk), *signals]


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _catch_up(company_id: int, after: int) -> str:
    messages, more = selectors.chat_messages_after(company_id=company_id, after=after)
    if not messages:
        return ""
    return render_to_string(
        "chat/partials/_messages_push.html", {"messages": messages, "missed_more": more}
    )


class ChatConsumer(AsyncWebsocketConsumer):
    company: Company | None = None
    joined: list[str]
    user: Any

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        room = await database_sync_to_async(_room_and_groups)(user, slug)
        if room is None:
            await self.close(code=FORBIDDEN)
            return
        self.company, self.joined = room
        self.user = user
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await database_sync_to_async(services.chat_presence_touch)(
            company_id=self.company.pk, user_id=user.pk, connection=self.channel_name
        )

    async def disconnect(self, code: int) -> None:
        if self.company is None:
            return
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await database_sync_to_async(services.chat_presence_leave)(
            company_id=self.company.pk, user_id=self.user.pk, connection=self.channel_name
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.company is None or not text_data:
            return
        try:
            data = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        # Access is checked again on every message (heartbeats come every 20 s): a user
        # removed from the company or deactivated loses the room without a reconnect.
        if not await database_sync_to_async(self._still_allowed)():
            await self.close(code=FORBIDDEN)
            return
        kind = data.get("type")
        if kind == "heartbeat":
            await database_sync_to_async(self._heartbeat)(_as_id(data.get("seen")))
        elif kind == "sync":
            after = _as_id(data.get("after"))
            html = await database_sync_to_async(_catch_up)(self.company.pk, after or 0)
            if html:
                await self.send(text_data=html)
        else:
            body = data.get("body")
            html = await database_sync_to_async(self._post)(
                body if isinstance(body, str) else "", _as_id(data.get("incident"))
            )
            await self.send(text_data=html)

    def _still_allowed(self) -> bool:
        fresh = User.objects.filter(pk=self.user.pk, is_active=True).first()
        if fresh is None or selectors.chat_room_for(user=fresh, slug=self.company.slug) is None:
            return False
        self.user = fresh
        return True

    def _heartbeat(self, seen: int | None) -> None:
        services.chat_presence_touch(
            company_id=self.company.pk, user_id=self.user.pk, connection=self.channel_name
        )
        if seen is not None:
            latest = selectors.chat_latest_message_id(company_id=self.company.pk)
            services.chat_mark_read(
                user_id=self.user.pk, company_id=self.company.pk, upto_message_id=min(seen, latest)
            )

    def _post(self, body: str, incident_id: int | None) -> str:
        """Post, and answer the sender: the error, or a cleared form state."""
        try:
            services.chat_message_post(
                company=self.company, author=self.user, body=body, incident_id=incident_id
            )
        except errors.ApplicationError as error:
            return render_to_string("chat/partials/_post_result.html", {"error": error.message})
        return render_to_string("chat/partials/_post_result.html", {"error": ""})

    async def chat_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])

    async def chat_rooms(self, event: dict) -> None:
        """Another room got a message: the page re-fetches its rooms list."""
        if event["company_id"] != self.company.pk:
            await self.send(text_data=event["html"])
