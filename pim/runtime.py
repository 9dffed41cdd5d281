"""The process-wide services one app or worker holds, built from settings."""

from dataclasses import dataclass, field

from pim.db import Database, create_engine
from pim.jobs import ArqQueue, InProcessQueue, JobQueue
from pim.ratelimit import RateLimiter
from pim.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    limiter: RateLimiter
    queue: JobQueue = field(init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        runtime = cls(
            settings=settings,
            db=Database(create_engine(settings)),
            limiter=RateLimiter(settings.redis_url, settings.rate_limit_per_minute),
        )
        if settings.redis_url:
            runtime.queue = ArqQueue(settings.redis_url)
        else:
            from jobs import REGISTRY  # jobs import resolvers, which import this module's users

            runtime.queue = InProcessQueue(REGISTRY, {"runtime": runtime})
        return runtime

    async def close(self) -> None:
        await self.queue.close()
        await self.db.dispose()
