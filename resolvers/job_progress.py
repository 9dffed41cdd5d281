"""Watching an import or a sync job: its states from the database's current one to its end.

Both kinds of job commit their state before they publish it, so the database read
after subscribing is never behind the broker: the first state is exact, and the
changes published before that read are dropped as stale (pim.progress.watch).
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pim import progress
from pim.auth import Caller
from pim.broker import Broker
from pim.db import Database
from pim.progress import State
from resolvers import imports, sync


@dataclass(frozen=True, slots=True)
class WatchedJobs:
    """What a watcher needs to know of one kind of job."""

    kind: str
    final: frozenset[str]
    # Grows with the work done: a change counting less than the last state is stale.
    counter: str
    # The caller's job as subscribers see it; raises NotFound for another account's.
    read: Callable[[AsyncSession, Caller, uuid.UUID], Awaitable[State]]


async def _import_state(session: AsyncSession, caller: Caller, job_id: uuid.UUID) -> State:
    return imports.progress_state(await imports.get_job(session, caller, job_id=job_id))


async def _sync_state(session: AsyncSession, caller: Caller, job_id: uuid.UUID) -> State:
    return sync.progress_state(await sync.get_sync_job(session, caller, id=job_id))


IMPORTS = WatchedJobs(
    kind=imports.PROGRESS_KIND,
    final=imports.FINAL_STATUSES,
    counter="processed_rows",
    read=_import_state,
)
SYNCS = WatchedJobs(
    kind=sync.PROGRESS_KIND, final=sync.FINAL, counter="processed", read=_sync_state
)


def watch(
    db: Database, broker: Broker, caller: Caller, jobs: WatchedJobs, job_id: uuid.UUID
) -> AsyncIterator[State]:
    """The caller's job's states, from the current one to a final one."""

    async def current() -> State:
        async with db.read() as session:
            return await jobs.read(session, caller, job_id)

    return progress.watch(
        broker, jobs.kind, job_id, final=jobs.final, current=current, counter=jobs.counter
    )
