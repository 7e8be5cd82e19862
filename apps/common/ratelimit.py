"""Token buckets: ``burst`` tokens at most, refilled at ``rate_per_minute``; one per company
for webhooks, one per address and per account for log-ins.

With Redis the bucket lives in one hash updated by a Lua script, so every web process and
thread shares it and the take is atomic; the script reads Redis's own clock. Without Redis
(the embedded mode, one process) a lock-guarded dictionary does the same arithmetic.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from redis.commands.core import Script

from apps.common.redis import get_redis

# A Lua function other scripts include (the webhook admission script takes a token in the
# same round trip as its other checks): returns allowed (0/1) and the tokens left.
TAKE_TOKEN_LUA = """
local function take_token(key, rate, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil then
    tokens = burst
    ts = now
  end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  local allowed = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('EXPIRE', key, math.ceil(burst / rate) + 60)
  return allowed, tokens
end
"""  # noqa: S105
TOKEN_BUCKET_LUA = (
    TAKE_TOKEN_LUA
    + """
local allowed, tokens = take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {allowed, tostring(tokens)}
"""
)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    burst: int
    remaining: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Burst": str(self.burst),
            "X-RateLimit-Remaining": str(self.remaining),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def decision(allowed: bool, tokens: float, rate_per_minute: int, burst: int) -> Decision:
    per_second = rate_per_minute / 60
    retry_after = 0 if allowed else max(1, math.ceil((1 - tokens) / per_second))
    return Decision(allowed, rate_per_minute, burst, max(0, math.floor(tokens)), retry_after)


class _LocalBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, rate_per_second: float, burst: int) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            tokens, ts = self._state.get(key, (float(burst), now))
            tokens = min(burst, tokens + max(0.0, now - ts) * rate_per_second)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._state[key] = (tokens, now)
        return allowed, tokens


_local = _LocalBuckets()


def bucket_key(bucket: str) -> str:
    return f"aw:ratelimit:{bucket}"


def take_token(*, bucket: str, rate_per_minute: int, burst: int) -> Decision:
    key = bucket_key(bucket)
    per_second = rate_per_minute / 60
    if settings.REDIS_URL:
        allowed, tokens = _token_bucket_script()(keys=[key], args=[per_second, burst])
        return decision(bool(allowed), float(tokens), rate_per_minute, burst)
    allowed, tokens = _local.take(key, per_second, burst)
    return decision(allowed, tokens, rate_per_minute, burst)


@functools.cache
def _token_bucket_script() -> Script:
    """Sent once, then run by its SHA (EVALSHA), reloaded by redis-py if Redis forgot it."""
    return get_redis().register_script(TOKEN_BUCKET_LUA)
