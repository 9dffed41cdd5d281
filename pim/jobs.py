"""The job interface: arq on Redis for the real stack, in-process tasks for the embedded default.

Job functions live in `jobs/` and take `(ctx, *ids)`; `ctx["runtime"]` holds the
database and other services, `ctx["job_id"]` and `ctx["job_try"]` what arq gives.
Resolvers never see which queue runs them.
"""

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy.ext.asyncio import AsyncSession

from pim.job_telemetry import carrier

JobFunction = Callable[..., Awaitable[Any]]
log = logging.getLogger("pim.jobs")

DEFAULT_QUEUE = "arq:queue"
# A job that fails unexpectedly (a lost connection, a crash in a dependency) runs again,
# this many times in all, after `RETRY_DELAY_SECONDS × try`: jobs are idempotent.
MAX_TRIES = 5
RETRY_DELAY_SECONDS = 5.0
_PENDING = "pim_pending_jobs"


# What ends a job that failed on its last try: given the job's context, a reference
# to the logged traceback, and the job's arguments; returns the job's result.
LastFailure = Callable[..., Awaitable[Any]]


def ending(function: JobFunction, on_last_failure: LastFailure) -> JobFunction:
    """The job, except that when it raises on its last try, `on_last_failure` ends it
    (marks it failed, tells its watchers) rather than leave it in the state it was in.

    Earlier tries raise: the queue runs the job again, and a lost connection or a
    restarted database is usually gone by then.
    """

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        try:
            return await function(ctx, *args)
        except Exception:
            if ctx["job_try"] < MAX_TRIES:
                raise
            reference = uuid.uuid4().hex[:12]
            log.exception(
                "job %s%r failed on its last try (reference %s)", function.__name__, args, reference
            )
            return await on_last_failure(ctx, reference, *args)

    return run


@dataclass(frozen=True, slots=True)
class PendingJob:
    function: str
    args: tuple[Any, ...]
    job_id: str | None = None
    queue: str | None = None


def defer(
    session: AsyncSession,
    function: str,
    *args: Any,
    job_id: str | None = None,
    queue: str | None = None,
) -> None:
    """Enqueue a job once this session's transaction commits; never if it rolls back.

    A job enqueued inside the transaction could start before its rows exist.
    """
    session.info.setdefault(_PENDING, []).append(PendingJob(function, args, job_id, queue))


def take_pending(session: AsyncSession) -> list[PendingJob]:
    pending: list[PendingJob] = session.info.pop(_PENDING, [])
    return pending


class JobQueue(Protocol):
    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, queue: str | None = None
    ) -> str: ...

    async def close(self) -> None: ...


class InProcessQueue:
    """Runs the same job functions as asyncio tasks of this process."""

    def __init__(
        self, registry: Mapping[str, JobFunction], ctx: dict[str, Any], *, drain_seconds: float = 0
    ) -> None:
        self._registry = registry
        self._ctx = ctx
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._drain_seconds = drain_seconds
        self._closed = False

    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, queue: str | None = None
    ) -> str:
        job_id = job_id or uuid.uuid4().hex
        if self._closed:
            # The process is stopping: the job's state says it is unfinished, and the
            # next start resumes it (jobs.housekeeping.resume_unfinished).
            log.info("job %s (%s) left for the next start", function, job_id)
            return job_id
        running = self._tasks.get(job_id)
        if running is not None and not running.done():
            return job_id  # same id, same job: like arq, do not start it twice
        ctx = {**self._ctx, "job_id": job_id, "job_try": 1}
        task = asyncio.create_task(self._run(function, ctx, args), name=f"job:{function}:{job_id}")
        self._tasks[job_id] = task
        # Finished jobs are forgotten: a long-running process enqueues jobs forever.
        task.add_done_callback(lambda done: self._forget(job_id, done))
        return job_id

    def _forget(self, job_id: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
        if not task.cancelled():
            task.exception()  # already logged by _run; marks it as seen

    async def _run(self, function: str, ctx: dict[str, Any], args: tuple[Any, ...]) -> Any:
        while True:
            try:
                return await self._registry[function](ctx, *args)
            except Exception:
                log.exception("job %s (%s) failed, try %d", function, ctx["job_id"], ctx["job_try"])
                if ctx["job_try"] >= MAX_TRIES:
                    raise
            await asyncio.sleep(RETRY_DELAY_SECONDS * ctx["job_try"])
            ctx = {**ctx, "job_try": ctx["job_try"] + 1}

    async def drain(self) -> None:
        """Wait for every job started so far (tests, shutdown)."""
        while pending := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        """Take no more jobs; give the running ones `drain_seconds` (long ones hand over at
        their next checkpoint, see Runtime.draining), then cancel what still runs: it is
        resumed from its checkpoint at the next start."""
        self._closed = True
        running = [t for t in self._tasks.values() if not t.done()]
        if running and self._drain_seconds > 0:
            await asyncio.wait(running, timeout=self._drain_seconds)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


class ArqQueue:
    def __init__(self, redis_url: str) -> None:
        self._settings = RedisSettings.from_dsn(redis_url)
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()

    async def _redis(self) -> ArqRedis:
        async with self._lock:
            if self._pool is None:
                self._pool = await create_pool(self._settings)
            return self._pool

    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, queue: str | None = None
    ) -> str:
        redis = await self._redis()
        job = await redis.enqueue_job(
            function, *args, _job_id=job_id, _queue_name=queue or DEFAULT_QUEUE, **carrier()
        )
        # None: a job with this id is queued, running or kept as a result already.
        return job.job_id if job is not None else (job_id or "")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run `work` as a task while the block runs; cancelled when the block ends."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
