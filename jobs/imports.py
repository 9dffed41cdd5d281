"""Running a file import: read the whole file once (a broken one fails before anything
is written), then write it chunk by chunk.

Idempotent and resumable: each chunk commits with the job's checkpoint, a re-run
skips the rows already committed, and pause or cancel is noticed between chunks
(the next chunk's compare-and-set fails). Progress goes out after every step.

A run stops after `import_slice_seconds` and enqueues its own continuation, so no
run outlives arq's job timeout and a worker shutting down gracefully waits for
one slice, not for a whole million-row import.

Big files are read, mapped and checked by another process (jobs.ahead) while this
one writes the previous chunk.
"""

import asyncio
import contextlib
import functools
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from jobs.ahead import produced_elsewhere
from pim import progress
from pim.runtime import Runtime
from resolvers import import_runs, import_storage
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
    deadline = time.monotonic() + runtime.settings.import_slice_seconds
    async with runtime.db.transaction() as session:
        plan = await import_runs.begin(session, job_uuid)
    if plan is None:
        # Nothing to run (paused, cancelled, done): tell watchers the state it is in.
        return await _publish_current(runtime, job_uuid)
    await _publish_current(runtime, job_uuid)
    checkpoint = plan.checkpoint
    interval = runtime.settings.import_progress_interval_seconds
    published = float("-inf")  # when progress last went out: not yet
    statistics = import_runs.StatisticsSchedule(plan.products_at_start)
    try:
        async with _file_work(plan, runtime) as items:
            async for item in items:
                async with runtime.db.transaction() as session:
                    if isinstance(item, _Analysed):
                        job = await import_runs.analysed(session, plan, item.total)
                    else:
                        job = await import_runs.write_chunk(session, plan, checkpoint, item)
                if job is None:
                    return await _publish_current(runtime, job_uuid)
                # Status changes always go out; rows written, at most once per interval:
                # every state costs each API process a send per watching socket.
                if isinstance(item, _Analysed) or time.monotonic() - published >= interval:
                    await progress.publish(
                        runtime.broker, PROGRESS_KIND, job_uuid, progress_state(job)
                    )
                    published = time.monotonic()
                if isinstance(item, _Analysed):
                    continue
                checkpoint += len(item.rows)
                if statistics.due(checkpoint - plan.checkpoint):
                    async with runtime.db.transaction() as session:
                        await import_runs.refresh_statistics(session)
                if time.monotonic() >= deadline:
                    await runtime.queue.enqueue("run_import", job_id)
                    return "continued"
    except ImportFileError as error:
        async with runtime.db.transaction() as session:
            await import_runs.fail(session, job_uuid, error)
        return await _publish_current(runtime, job_uuid)
    async with runtime.db.transaction() as session:
        await import_runs.finish(session, plan)
    return await _publish_current(runtime, job_uuid)


@dataclass(frozen=True, slots=True)
class _Analysed:
    """The whole file was read: it holds `total` data rows."""

    total: int


@contextlib.asynccontextmanager
async def _file_work(
    plan: import_runs.RunPlan, runtime: Runtime
) -> AsyncIterator[AsyncIterator[_Analysed | import_runs.Chunk]]:
    """What reading the file yields for the run, in another process for files big
    enough to repay starting one (the worker then never holds a parsed sheet)."""
    with tempfile.NamedTemporaryFile(prefix="pim-import-", delete=False) as spool:
        path = Path(spool.name)
        try:
            async with runtime.db.read() as session:
                size = await import_storage.load_into(session, plan.job_id, spool)
            make = functools.partial(_read, plan, path, runtime.settings.import_chunk_size)
            if size >= runtime.settings.import_reader_process_bytes:
                async with produced_elsewhere(make) as items:
                    yield items
            else:
                yield _aiter(make())
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)


async def _aiter(items: Iterator[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def _read(
    plan: import_runs.RunPlan, path: Path, size: int
) -> Iterator[_Analysed | import_runs.Chunk]:
    with path.open("rb") as file:
        # Open, the file needs no name: gone with the last process reading it, even one
        # that is killed.
        path.unlink()
        if plan.checkpoint == 0:
            # The whole file is read before anything is written: a broken one fails undamaged.
            total = import_runs.analyse(plan, file)
            if total == 0:
                raise ImportFileError("aucune ligne de données dans le fichier", "no_rows")
            yield _Analysed(total)
            file.seek(0)
        rows = mapped_rows(file, plan.file_type, plan.mapping, eans_only=plan.checkpoint)
        keys = import_runs.FileKeys()
        keys.add(islice(rows, plan.checkpoint))  # rows committed before a restart
        for chunk in _batched(rows, size):
            yield import_runs.prepare_chunk(plan, chunk, keys)


async def _publish_current(runtime: Runtime, job_id: uuid.UUID) -> str:
    async with runtime.db.transaction() as session:
        job = await import_runs.load(session, job_id)
    if job is None:
        return "missing"
    await progress.publish(runtime.broker, PROGRESS_KIND, job_id, progress_state(job))
    return job.status
