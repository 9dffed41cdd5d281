"""A connector's token bucket shared through Redis, for the real stack (the embedded
default keeps connectors.http's buckets in its one process).

A bucket kept in a process paces only that process: two arq workers syncing the same
connector (a push and a pull, or a job taken over from a slow worker) would each
spend the platform's whole budget and be throttled. On the real stack the bucket of
a connector lives in Redis under one key per connector id, and every process takes
its tokens there, with one atomic script per request.

The script reserves: it spends the tokens at once, going below zero when they are
not there, and answers how long the caller waits before sending. Reservations are
served in the order they reach Redis, and over any span the tokens spent never pass
the burst plus the rate times the span, however many processes take them. The clock
is Redis's own (TIME), so workers whose clocks drift agree. The key expires once the
bucket would be full again, which is what an absent key means.

A platform's own signals (a spent window, Shopify's account of its cost bucket) only
ever lower the shared count, on the next request: another worker may have spent
since the answer that carried them.
"""

import asyncio
import time

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

# KEYS[1]: the bucket. ARGV: rate per second, burst, cost, and a ceiling on the
# tokens before taking ('' for none). Answers the seconds to wait, as a string
# (Lua numbers come back from Redis truncated to integers).
_TAKE = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if ARGV[4] ~= '' then tokens = math.min(tokens, tonumber(ARGV[4])) end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
if tokens >= 0 then return '0' end
return string.format('%.6f', -tokens / rate)
"""


class RedisBucket:
    """A connector's bucket in Redis: `rate` tokens a second, at most `burst` at once."""

    def __init__(self, script: AsyncScript, key: str, rate: float, burst: float) -> None:
        self._script = script
        self.key = key
        self.rate = rate
        self.burst = burst
        # A ceiling on the shared count from a signal, and when it was seen: it has
        # refilled since, at the rate, by the time the next request takes its tokens.
        self._ceiling: tuple[float, float] | None = None

    async def take(self, cost: float = 1.0) -> None:
        ceiling = self._refilled_ceiling()
        self._ceiling = None
        arguments = [self.rate, self.burst, cost, "" if ceiling is None else ceiling]
        answer = await self._script(keys=[self.key], args=arguments)
        wait = float(answer)
        if wait > 0:
            await asyncio.sleep(wait)

    def _refilled_ceiling(self) -> float | None:
        if self._ceiling is None:
            return None
        tokens, seen = self._ceiling
        return tokens + (time.monotonic() - seen) * self.rate

    def _lower(self, tokens: float) -> None:
        current = self._refilled_ceiling()
        self._ceiling = (tokens if current is None else min(tokens, current), time.monotonic())

    def pause(self, seconds: float) -> None:
        self._lower(-seconds * self.rate)

    def mirror(self, available: float, rate: float, size: float) -> None:
        self.rate, self.burst = rate, size
        self._lower(min(size, available))


class RedisBuckets:
    """Every connector's bucket, in the Redis at `url` (key `pim:pace:<connector>`)."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url)
        self._take = self._redis.register_script(_TAKE)

    def bucket(self, key: str, rate: float, burst: float) -> RedisBucket:
        return RedisBucket(self._take, f"pim:pace:{key}", rate, burst)

    async def close(self) -> None:
        await self._redis.aclose()
