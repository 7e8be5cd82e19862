"""Who is online in a company's chat room.

Every open chat socket is one member ``<user id>:<connection>`` of a per-company set, scored
by the moment it expires (now + ``TTL_SECONDS``). The page's heartbeat (every
``HEARTBEAT_SECONDS``) pushes that moment forward, a closed socket removes its member, and
the socket of a browser that vanished without a close frame simply expires. Reads ignore
expired members; writes (a connect, a heartbeat, a close) also delete them and report
whether the set of online users changed, so a heartbeat of anyone still in the room
announces that someone dropped out.

With Redis the set is a sorted set changed in one MULTI/EXEC, shared by every web process
(and the key itself expires once nobody touches it). Without Redis (the embedded mode, one
process) a lock-guarded dictionary does the same.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from apps.common.redis import get_redis

TTL_SECONDS = 60.0
HEARTBEAT_SECONDS = 20


@dataclass(frozen=True, slots=True)
class Change:
    online: frozenset[int]
    changed: bool


def _key(company_id: int) -> str:
    return f"aw:chat:presence:{company_id}"


def _member(user_id: int, connection: str) -> str:
    return f"{user_id}:{connection}"


def _users(members: Iterable[str | bytes]) -> frozenset[int]:
    return frozenset(
        int((m.decode() if isinstance(m, bytes) else m).split(":", 1)[0]) for m in members
    )


class _LocalPresence:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[int, dict[str, float]] = {}

    def update(
        self, company_id: int, now: float, *, add: str | None, remove: str | None
    ) -> tuple[list[str], list[str]]:
        with self._lock:
            room = self._rooms.setdefault(company_id, {})
            before = list(room)
            for member, deadline in list(room.items()):
                if deadline <= now:
                    del room[member]
            if add is not None:
                room[add] = now + TTL_SECONDS
            if remove is not None:
                room.pop(remove, None)
            after = list(room)
            if not room:
                del self._rooms[company_id]
        return before, after

    def alive(self, company_id: int, now: float) -> list[str]:
        with self._lock:
            room = self._rooms.get(company_id, {})
            return [member for member, deadline in room.items() if deadline > now]


_local = _LocalPresence()


def _update(
    company_id: int, now: float, *, add: str | None = None, remove: str | None = None
) -> tuple[list, list]:
    """Apply the change, dropping expired members; the members before and after."""
    if not settings.REDIS_URL:
        return _local.update(company_id, now, add=add, remove=remove)
    key = _key(company_id)
    pipe = get_redis().pipeline(transaction=True)
    pipe.zrange(key, 0, -1)
    pipe.zremrangebyscore(key, "-inf", now)
    if add is not None:
        pipe.zadd(key, {add: now + TTL_SECONDS})
        pipe.expire(key, math.ceil(TTL_SECONDS) * 2)
    if remove is not None:
        pipe.zrem(key, remove)
    pipe.zrange(key, 0, -1)
    results = pipe.execute()
    return results[0], results[-1]


def _change(before: Iterable[str | bytes], after: Iterable[str | bytes]) -> Change:
    online = _users(after)
    return Change(online=online, changed=online != _users(before))


def presence_touch(
    *, company_id: int, user_id: int, connection: str, now: float | None = None
) -> Change:
    """The connection is alive (it just connected or sent a heartbeat)."""
    moment = time.time() if now is None else now
    return _change(*_update(company_id, moment, add=_member(user_id, connection)))


def presence_leave(
    *, company_id: int, user_id: int, connection: str, now: float | None = None
) -> Change:
    """The connection closed."""
    moment = time.time() if now is None else now
    return _change(*_update(company_id, moment, remove=_member(user_id, connection)))


def presence_online(*, company_id: int, now: float | None = None) -> frozenset[int]:
    """Ids of the users with at least one live connection to the room."""
    moment = time.time() if now is None else now
    if not settings.REDIS_URL:
        return _users(_local.alive(company_id, moment))
    return _users(get_redis().zrangebyscore(_key(company_id), f"({moment}", "+inf"))
