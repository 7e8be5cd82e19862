"""The webhook's checks on shared state, in one Redis round trip (one Lua script):

1. the API key lookup this process cached is still current (the keys generation has not
   changed since it was read);
2. the signature was not accepted before (replay), which the memory can only tell for
   signatures stamped since it began: the first signed request that finds no start
   (``REPLAY_EPOCH_KEY``: Redis restarted empty) records Redis's clock, and an older
   X-Timestamp is refused, to be signed again;
3. the company's token bucket has a token.

The signature is remembered only once a token was taken, so a request refused with 429 can
be sent again as it was. Without Redis (the embedded mode, one process) the same steps run
against the local cache and buckets.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.core.cache import cache
from redis.commands.core import Script

from apps.alerts.signing import REPLAY_EPOCH_KEY, REPLAY_MEMORY_SECONDS, Replay
from apps.common.errors import AuthenticationError, RateLimited
from apps.common.ratelimit import TAKE_TOKEN_LUA, Decision, bucket_key, decision, take_token
from apps.common.redis import get_redis
from apps.tenants.models import Company
from apps.tenants.services import KEYS_GENERATION, keys_generation

# KEYS: generation, bucket[, replay, replay memory start]. ARGV: the generation the caller
# read ("*": none to check), tokens per second, burst, replay marker, replay memory in
# seconds, 1 when an exact retry of the same delivery may pass, X-Timestamp.
ADMIT_LUA = (
    TAKE_TOKEN_LUA
    + """
if ARGV[1] ~= '*' and (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then
  return {'stale'}
end
if KEYS[3] then
  local started = tonumber(redis.call('GET', KEYS[4]))
  if not started then
    started = tonumber(redis.call('TIME')[1])
    redis.call('SET', KEYS[4], started)
  end
  if tonumber(ARGV[7]) < started then
    return {'unproven', tostring(started)}
  end
  local seen = redis.call('GET', KEYS[3])
  if seen and not (ARGV[6] == '1' and seen == ARGV[4]) then
    return {'replayed'}
  end
end
local allowed, tokens = take_token(KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]))
if allowed == 1 and KEYS[3] then
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
end
return {'ok', allowed, tostring(tokens)}
"""
)


class StaleKey(Exception):
    """The company or its keys changed since this process read them: read them again."""


def admit(*, company: Company, generation: str | None, replay: Replay | None) -> Decision:
    """Raise StaleKey, AuthenticationError (a replay, or a signature older than the replay
    memory) or RateLimited (429), or return the rate-limit decision (its headers go on the
    answer). ``generation`` None: the caller holds the company itself, not a cached key
    lookup."""
    rate, burst = company.rate_limit_per_minute, company.rate_limit_burst
    if settings.REDIS_URL:
        keys = [KEYS_GENERATION, bucket_key(str(company.pk))]
        args = ["*" if generation is None else generation, rate / 60, burst]
        if replay is not None:
            keys += [replay.key, REPLAY_EPOCH_KEY]
            args += [replay.marker, REPLAY_MEMORY_SECONDS, int(replay.retry), replay.sent_at]
        outcome = _admit_script()(keys=keys, args=args)
        if outcome[0] == b"stale":
            raise StaleKey
        if outcome[0] == b"unproven":
            raise _unproven(replay, int(outcome[1]))
        if outcome[0] == b"replayed":
            raise _replayed()
        result = decision(bool(outcome[1]), float(outcome[2]), rate, burst)
    else:
        if generation is not None and keys_generation() != generation:
            raise StaleKey
        if replay is not None:
            started = cache.get_or_set(REPLAY_EPOCH_KEY, int(time.time()), None)
            if replay.sent_at < started:
                raise _unproven(replay, started)
            seen = cache.get(replay.key)
            if seen is not None and not (replay.retry and seen == replay.marker):
                raise _replayed()
        result = take_token(bucket=str(company.pk), rate_per_minute=rate, burst=burst)
        if result.allowed and replay is not None:
            cache.set(replay.key, replay.marker, REPLAY_MEMORY_SECONDS)
    if not result.allowed:
        raise RateLimited(
            f"Rate limit exceeded: {rate} requests per minute (burst {burst}). "
            f"Retry after {result.retry_after} s.",
            headers=result.headers(),
        )
    return result


def _replayed() -> AuthenticationError:
    return AuthenticationError(
        "This signature was already used: the request is a replay.", code="signature_replayed"
    )


def _unproven(replay: Replay, started: int) -> AuthenticationError:
    return AuthenticationError(
        f"X-Timestamp {replay.sent_at} is older than the replay memory, which restarted at "
        f"{started}: this signature cannot be proven unused. Sign the request again with "
        "the current time.",
        code="signature_unproven",
    )


@functools.cache
def _admit_script() -> Script:
    return get_redis().register_script(ADMIT_LUA)
