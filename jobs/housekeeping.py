"""Keeping jobs honest: the lease reaper, the stuck-job watchdog, retention, and the
embedded default's resumption of what a stopped process left unfinished.

On the real stack the reaper is a task of every worker (it must run even when every
worker is busy) and the watchdog and retention are arq crons; on the embedded default
they are tasks of the API process (see `embedded`).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from pim.jobs import InProcessQueue, in_background
from pim.leases import Leases
from pim.runtime import Runtime
from pim.timeutil import utcnow
from resolvers import job_health, retention
from resolvers.job_health import StuckJob

log = logging.getLogger("pim.jobs.health")

# arq cron times: the watchdog at the top of every minute, retention once an hour.
WATCHDOG_SECOND = 5
RETENTION_MINUTE = 17
RETENTION_SECOND = 40
# The watchdog's line: a stable text for log searches and alerts.
STUCK_MESSAGE = "job not progressing"


async def reap_forever(runtime: Runtime, leases: Leases) -> None:
    """Every renewal interval, hand the jobs of dead workers over (pim.leases)."""
    while True:
        try:
            for job_id in await leases.reap():
                log.warning("job %s lost its worker (lease expired): back in the queue", job_id)
        except Exception:
            log.exception("lease reaper round failed")
        await asyncio.sleep(runtime.settings.job_lease_renew_seconds)


async def stuck_jobs(runtime: Runtime) -> list[StuckJob]:
    """Unfinished jobs that have not progressed for `job_stuck_after_seconds`."""
    older_than = timedelta(seconds=runtime.settings.job_stuck_after_seconds)
    async with runtime.db.read() as session:
        return await job_health.stuck_jobs(session, now=utcnow(), older_than=older_than)


async def watch_stuck_jobs(ctx: dict[str, Any]) -> int:
    """Log each stuck job, with the stable message STUCK_MESSAGE; how many there are."""
    stuck = await stuck_jobs(ctx["runtime"])
    for job in stuck:
        log.warning(
            "%s: %s job %s (account %s) %s since %s",
            STUCK_MESSAGE, job.kind, job.job_id, job.account_id, job.status, job.since.isoformat(),
            extra={"job_kind": job.kind, "job_id": str(job.job_id), "job_status": job.status},
        )  # fmt: skip
    return len(stuck)


async def apply_retention(ctx: dict[str, Any]) -> dict[str, int]:
    """Remove everything past its retention, batch by batch, each batch a transaction."""
    runtime: Runtime = ctx["runtime"]
    now = utcnow()
    removed: dict[str, int] = {}
    for rule in retention.RULES:
        removed[rule.name] = 0
        while True:
            async with runtime.db.transaction() as session:
                count = await retention.remove_batch(
                    session, rule, settings=runtime.settings, now=now
                )
            removed[rule.name] += count
            if count == 0:
                break
    if any(removed.values()):
        log.info("retention removed %s", removed)
    return removed


async def retention_due(runtime: Runtime) -> dict[str, int]:
    """What apply_retention would remove now (its dry run)."""
    now = utcnow()
    async with runtime.db.read() as session:
        return {
            rule.name: await retention.count_due(session, rule, settings=runtime.settings, now=now)
            for rule in retention.RULES
        }


async def resume_unfinished(runtime: Runtime) -> int:
    """Queue every job a stopped process left unfinished (the in-process queue keeps
    nothing across a restart); each resumes from its checkpoint."""
    async with runtime.db.read() as session:
        unfinished = await job_health.unfinished_jobs(session)
    for job in unfinished:
        await runtime.queue.enqueue(job.function, str(job.job_id))
    if unfinished:
        log.info("resumed %d unfinished jobs", len(unfinished))
    return len(unfinished)


async def _every(runtime: Runtime, interval: float) -> None:
    ctx = {"runtime": runtime}
    while True:
        await asyncio.sleep(interval)
        for round_ in (watch_stuck_jobs, apply_retention):
            try:
                await round_(ctx)
            except Exception:
                log.exception("housekeeping round %s failed", round_.__name__)


@contextlib.asynccontextmanager
async def embedded(runtime: Runtime, *, interval: float = 60.0) -> AsyncIterator[None]:
    """On the embedded default: resume what the last process left, then run the watchdog
    and retention every `interval` seconds while the app runs. Nothing on the real
    stack, where workers do all of it."""
    if not isinstance(runtime.queue, InProcessQueue):
        yield
        return
    await resume_unfinished(runtime)
    async with in_background(_every(runtime, interval), "housekeeping"):
        yield
