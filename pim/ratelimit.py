"""Per-key request limits: a fixed one-minute window, in Redis or in process.

One Redis round trip per request (INCR and EXPIRE NX in one pipeline), so the
limit costs little on the hot path; the counters are shared by every API replica.
"""

import math
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from pim import metrics

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class RateWindow:
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the window starts over
    allowed: bool

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


class _Counter(Protocol):
    async def incr(self, key: str, window_end: int, units: int = 1) -> int: ...


class _MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}

    async def incr(self, key: str, window_end: int, units: int = 1) -> int:
        count, end = self._counts.get(key, (0, window_end))
        if end != window_end:
            self._counts = {k: v for k, v in self._counts.items() if v[1] >= window_end}
            count = 0
        self._counts[key] = (count + units, window_end)
        return count + units


class _RedisCounter:
    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url)

    async def incr(self, key: str, window_end: int, units: int = 1) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incrby(key, units)
            pipe.expireat(key, window_end + 1, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, redis_url: str | None, default_per_minute: int) -> None:
        self._counter: _MemoryCounter | _RedisCounter = (
            _RedisCounter(redis_url) if redis_url else _MemoryCounter()
        )
        self.default_per_minute = default_per_minute

    async def hit(self, key_id: uuid.UUID, per_minute: int | None) -> RateWindow:
        return await self.consume(key_id, per_minute, 1)

    async def consume(self, key_id: uuid.UUID, per_minute: int | None, units: int) -> RateWindow:
        """Count `units` requests at once: an expensive GraphQL query spends more of the
        key's budget than a cheap one."""
        limit = per_minute or self.default_per_minute
        window_end = (int(time.time()) // WINDOW_SECONDS + 1) * WINDOW_SECONDS
        count = await self._counter.incr(f"pim:rate:{key_id}:{window_end}", window_end, units)
        if count > limit:
            metrics.rate_limited()
        return RateWindow(
            limit=limit,
            remaining=max(0, limit - count),
            reset_at=window_end,
            allowed=count <= limit,
        )

    async def close(self) -> None:
        if isinstance(self._counter, _RedisCounter):
            await self._counter.close()
