"""The process-wide services one app or worker holds, built from settings."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from pim.broker import Broker, InProcessBroker, RedisBroker
from pim.db import Database, create_engine
from pim.jobs import ArqQueue, InProcessQueue, JobFunction, JobQueue, PendingJob
from pim.pacing import RedisBuckets
from pim.ratelimit import RateLimiter
from pim.settings import Settings
from pim.shared_cache import Memo, MemoryMemo, RedisMemo


@dataclass
class Runtime:
    settings: Settings
    db: Database
    limiter: RateLimiter
    queue: JobQueue = field(init=False)
    broker: Broker = field(init=False)
    memo: Memo = field(init=False)
    # Connectors' token buckets shared by every worker (None: each process paces itself).
    buckets: RedisBuckets | None = field(default=None, init=False)
    # Set when the process is asked to stop: long jobs hand over at their next checkpoint.
    draining: bool = field(default=False, init=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, jobs: Mapping[str, JobFunction]) -> "Runtime":
        """`jobs` are the functions the in-process queue runs on the embedded default (arq
        workers register their own): given by the composition root, since jobs/ is built
        on this module."""
        runtime = cls(
            settings=settings,
            db=Database(create_engine(settings)),
            limiter=RateLimiter(settings.redis_url, settings.rate_limit_per_minute),
        )
        if settings.redis_url:
            runtime.queue = ArqQueue(settings.redis_url)
            runtime.broker = RedisBroker(settings.redis_url)
            runtime.memo = RedisMemo(settings.redis_url)
            runtime.buckets = RedisBuckets(settings.redis_url)
        else:
            runtime.queue = InProcessQueue(
                jobs, {"runtime": runtime}, drain_seconds=settings.worker_drain_seconds
            )
            runtime.broker = InProcessBroker()
            runtime.memo = MemoryMemo()
        runtime.db.dispatch = runtime.enqueue_all
        return runtime

    async def enqueue_all(self, jobs: list[PendingJob]) -> None:
        for job in jobs:
            await self.queue.enqueue(job.function, *job.args, job_id=job.job_id, queue=job.queue)

    async def close(self) -> None:
        self.draining = True
        await self.queue.close()
        await self.broker.close()
        await self.limiter.close()
        await self.memo.close()
        if self.buckets is not None:
            await self.buckets.close()
        await self.db.dispose()
