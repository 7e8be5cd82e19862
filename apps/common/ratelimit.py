"""Token buckets: ``burst`` tokens at most, refilled at ``rate_per_minute``; one per company
for webhooks, one per address and per account for log-ins.

With Redis the bucket lives in one hash updated by a Lua script, so every web process and
thread shares it and the take is atomic; the script reads Redis's own clock. Without Redis
(the embedded mode, one process) a lock-guarded dictionary does the same arithmetic.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from apps.common.redis import get_redis

TOKEN_BUCKET_LUA = """  -- a token bucket, not a secret
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
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
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {allowed, tostring(tokens)}
"""  # noqa: S105


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


def _decision(allowed: bool, tokens: float, rate_per_minute: int, burst: int) -> Decision:
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


def take_token(*, bucket: str, rate_per_minute: int, burst: int) -> Decision:
    key = f"aw:ratelimit:{bucket}"
    per_second = rate_per_minute / 60
    if settings.REDIS_URL:
        client = get_redis()
        allowed, tokens = client.eval(TOKEN_BUCKET_LUA, 1, key, per_second, burst)
        return _decision(bool(allowed), float(tokens), rate_per_minute, burst)
    allowed, tokens = _local.take(key, per_second, burst)
    return _decision(allowed, tokens, rate_per_minute, burst)
