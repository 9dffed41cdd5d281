"""Leases on running jobs (the real stack): a dead worker's job is taken over in seconds.

arq marks a running job with an in-progress key that lives as long as its longest
function timeout, so a SIGKILLed worker's job waits that long (hours) before another
worker may take it. Instead, a running job renews a short lease here; a job whose
lease expired belongs to a worker that is gone (or frozen), and the reaper, which
every worker runs, deletes its in-progress key. The job is still in arq's queue, so
the next worker polling takes it, as a new try, and resumes from its checkpoint.

A lease that lapses while its worker is merely slow (an event loop blocked for the
whole lease) lets a second worker start the same job: jobs are idempotent and
checkpoint by compare-and-set, so one of the two runs stops at its next chunk.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from pim.jobs import in_background

log = logging.getLogger("pim.leases")

# Sorted set: arq job id -> when its lease expires (Unix seconds).
LEASES_KEY = "pim:job-leases"
# Reaping is atomic, so two reapers never hand the same job over twice, and a lease
# renewed after the reaper read it is left alone.
_REAP = """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


class Leases:
    def __init__(self, redis: ArqRedis, *, seconds: float, renew_every: float) -> None:
        self._redis = redis
        self._seconds = seconds
        self._renew_every = renew_every

    @contextlib.asynccontextmanager
    async def held(self, job_id: str) -> AsyncIterator[None]:
        """Hold the job's lease while the block runs, renewing it in the background.

        Released when the job returns or raises. Not when it is cancelled (a worker
        stopping): arq puts a cancelled job back itself, and if it could not, the
        lease runs out and the reaper does.
        """
        await self._renew(job_id)
        try:
            async with in_background(self._keep(job_id), f"lease:{job_id}"):
                yield
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._redis.zrem(LEASES_KEY, job_id)
            raise
        # Released once no renewal can follow.
        await self._redis.zrem(LEASES_KEY, job_id)

    async def _renew(self, job_id: str) -> None:
        await self._redis.zadd(LEASES_KEY, {job_id: time.time() + self._seconds})

    async def _keep(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                await self._renew(job_id)
            except Exception:  # Redis away for a moment: the next renewal may make it
                log.warning("could not renew the lease of job %s", job_id, exc_info=True)

    async def reap(self) -> list[str]:
        """Hand every job whose lease expired back to the queue; their ids."""
        now = time.time()
        expired = await self._redis.zrangebyscore(LEASES_KEY, "-inf", now)
        handed: list[str] = []
        for raw in expired:
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            keys = [LEASES_KEY, in_progress_key_prefix + job_id]
            # redis-py types eval as sync-or-async: awaited, it is the script's answer.
            if await self._redis.eval(_REAP, 2, *keys, job_id, str(now)):  # type: ignore[misc]
                handed.append(job_id)
        return handed
