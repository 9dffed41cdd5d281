"""Running a file import: analyse the whole file, then write it chunk by chunk.

Idempotent and resumable: each chunk commits with the job's checkpoint, a re-run
skips the rows already committed, and pause or cancel is noticed between chunks
(the next chunk's compare-and-set fails). Progress goes out after every step.
"""

import asyncio
import uuid
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from pim import progress
from pim.runtime import Runtime
from resolvers import import_runs
from resolvers.import_files import ImportFileError, mapped_rows
from resolvers.imports import PROGRESS_KIND, progress_state

T = TypeVar("T")


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    # itertools.batched arrives with Python 3.12; the project supports 3.11.
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def run_import(ctx: dict[str, Any], job_id: str) -> str:
    runtime: Runtime = ctx["runtime"]
    job_uuid = uuid.UUID(job_id)
    async with runtime.db.transaction() as session:
        plan = await import_runs.begin(session, job_uuid)
    if plan is None:
        # Nothing to run (paused, cancelled, done): tell watchers the state it is in.
        return await _publish_current(runtime, job_uuid)
    await _publish_current(runtime, job_uuid)
    checkpoint = plan.checkpoint
    try:
        if checkpoint == 0:
            # CPU-bound over the whole file: off the event loop.
            total = await asyncio.to_thread(import_runs.analyse, plan)
            if total == 0:
                raise ImportFileError("aucune ligne de données dans le fichier", "no_rows")
            async with runtime.db.transaction() as session:
                job = await import_runs.analysed(session, plan, total)
            if job is None:
                return await _publish_current(runtime, job_uuid)
            await progress.publish(runtime.broker, PROGRESS_KIND, job_uuid, progress_state(job))
        rows = mapped_rows(plan.content, plan.file_type, plan.mapping)
        for chunk in _batched(islice(rows, checkpoint, None), runtime.settings.import_chunk_size):
            async with runtime.db.transaction() as session:
                job = await import_runs.write_chunk(session, plan, checkpoint, chunk)
            if job is None:
                return await _publish_current(runtime, job_uuid)
            checkpoint += len(chunk)
            await progress.publish(runtime.broker, PROGRESS_KIND, job_uuid, progress_state(job))
    except ImportFileError as error:
        async with runtime.db.transaction() as session:
            await import_runs.fail(session, job_uuid, error)
        return await _publish_current(runtime, job_uuid)
    async with runtime.db.transaction() as session:
        await import_runs.finish(session, plan)
    return await _publish_current(runtime, job_uuid)


async def _publish_current(runtime: Runtime, job_id: uuid.UUID) -> str:
    async with runtime.db.transaction() as session:
        job = await import_runs.load(session, job_id)
    if job is None:
        return "missing"
    await progress.publish(runtime.broker, PROGRESS_KIND, job_id, progress_state(job))
    return job.status
