"""One Redis client per process for code that needs Redis itself (scripts, atomic counters),
beyond Django's cache API. Only used when ``REDIS_URL`` is set."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, health_check_interval=30)
