"""Per-key request limits: a moving one-minute window, in Redis or in process."""

import math
import time
import uuid
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


@dataclass(frozen=True, slots=True)
class RateWindow:
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when a slot frees up
    allowed: bool

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


class RateLimiter:
    def __init__(self, redis_url: str | None, default_per_minute: int) -> None:
        storage: Storage
        if redis_url:
            storage = RedisStorage(redis_url.replace("redis://", "async+redis://", 1))
        else:
            storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        self.default_per_minute = default_per_minute

    async def hit(self, key_id: uuid.UUID, per_minute: int | None) -> RateWindow:
        item = RateLimitItemPerMinute(per_minute or self.default_per_minute)
        allowed = await self._limiter.hit(item, "api-key", str(key_id))
        stats = await self._limiter.get_window_stats(item, "api-key", str(key_id))
        return RateWindow(
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_at=math.ceil(stats.reset_time),
            allowed=allowed,
        )
