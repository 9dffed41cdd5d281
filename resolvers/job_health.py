"""Jobs that should be moving: the unfinished ones (resumed when the embedded default
starts again) and the stuck ones (reported by the watchdog, and counted by metrics)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ImportJob, SyncJob
from pim.timeutil import utcnow
from resolvers import import_runs, sync

# The job function that runs each kind of job, by its id.
IMPORT_FUNCTION = "run_import"
SYNC_FUNCTION = "run_connector_sync"


@dataclass(frozen=True, slots=True)
class UnfinishedJob:
    function: str
    job_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class StuckJob:
    kind: str  # "import" or "sync"
    job_id: uuid.UUID
    account_id: uuid.UUID
    status: str
    # When it last moved (or was created, if it never started).
    since: datetime


async def unfinished_jobs(session: AsyncSession) -> list[UnfinishedJob]:
    """Every import and sync job that a queue should be running, oldest first."""
    imports = await session.scalars(
        select(ImportJob.id)
        .where(ImportJob.status.in_(import_runs.RUNNABLE))
        .order_by(ImportJob.created_at)
    )
    syncs = await session.scalars(
        select(SyncJob.id).where(SyncJob.status.in_(sync.RUNNABLE)).order_by(SyncJob.created_at)
    )
    return [UnfinishedJob(IMPORT_FUNCTION, job_id) for job_id in imports] + [
        UnfinishedJob(SYNC_FUNCTION, job_id) for job_id in syncs
    ]


async def stuck_jobs(
    session: AsyncSession, *, now: datetime, older_than: timedelta
) -> list[StuckJob]:
    """Unfinished jobs that have not progressed since `now - older_than`, longest first."""
    before = now - older_than
    stuck: list[StuckJob] = []
    for kind, model, statuses in (
        ("import", ImportJob, import_runs.RUNNABLE),
        ("sync", SyncJob, sync.RUNNABLE),
    ):
        since = func.coalesce(model.progressed_at, model.created_at)
        rows = await session.execute(
            select(model.id, model.account_id, model.status, since)
            .where(model.status.in_(statuses), since < before)
            .order_by(since)
        )
        stuck += [StuckJob(kind, *row) for row in rows]
    return sorted(stuck, key=lambda job: job.since)


async def stuck_counts(session: AsyncSession, *, older_than: timedelta) -> dict[str, int]:
    """How many jobs of each kind `stuck_jobs` names now (every kind, zeros included)."""
    counts = dict.fromkeys(("import", "sync"), 0)
    for job in await stuck_jobs(session, now=utcnow(), older_than=older_than):
        counts[job.kind] += 1
    return counts
