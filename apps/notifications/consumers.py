"""The one live-update socket every page opens (``/ws/live/``)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.accounts.permissions import is_msp_admin, member_company_ids
from apps.notifications.live import MSP_GROUP, company_group, user_group

UNAUTHENTICATED = 4401


def groups_for(user) -> list[str]:
    """The groups a user may listen to: their own, and their companies' (every company's
    for MSP admins)."""
    if not user.is_authenticated or not user.is_active:
        return []
    groups = [user_group(user.pk)]
    if is_msp_admin(user):
        groups.append(MSP_GROUP)
    else:
        groups.extend(company_group(cid) for cid in sorted(member_company_ids(user)))
    return groups


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        self.joined: list[str] = []
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.joined = await database_sync_to_async(groups_for)(user)
        if not self.joined:
            await self.close(code=UNAUTHENTICATED)
            return
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The socket is one-way: the browser sends nothing the server acts on."""

    async def live_message(self, event: dict) -> None:
        await self.send(text_data=event["html"])
