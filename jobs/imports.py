"""Running a file import: read the whole file once (a broken one fails before anything
is written), then write it chunk by chunk.

Idempotent and resumable: each chunk commits with the job's checkpoint, a re-run
skips the rows already committed, and pause or cancel is noticed between chunks
(the next chunk's compare-and-set fails). Progress goes out after every step.

A run stops after `import_slice_seconds` and enqueues its own continuation, so no
run outlives arq's job timeout and a worker shutting down gracefully waits for
one slice, not for a whole million-row import.

Big files are read, mapped and checked by another process (jobs.read_ahead) while this
one writes the previous chunk; on PostgreSQL two chunks are written at once (see
CHUNKS_IN_FLIGHT), each committing after the one before it.
"""

import asyncio
import contextlib
import functools
import tempfile
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from jobs.read_ahead import produced_elsewhere
from models import ImportJob
from pim import logs, progress
from pim.jobs import ending
from pim.runtime import Runtime
from resolvers import import_runs, import_storage
from resolvers.import_columns import open_columns, read_chunks
from resolvers.import_files import FileRecords, ImportFileError
from resolvers.imports import PROGRESS_KIND, progress_state

T = TypeVar("T")


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    # itertools.batched arrives with Python 3.12; the project supports 3.11.
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def _run_import(ctx: dict[str, Any], job_id: str) -> str:
    runtime: Runtime = ctx["runtime"]
    job_uuid = uuid.UUID(job_id)
    async with runtime.db.transaction() as session:
        plan = await import_runs.begin(session, job_uuid)
    if plan is None:
        # Nothing to run (paused, cancelled, done): tell watchers the state it is in.
        return await _publish_current(runtime, job_uuid)
    logs.bind(account_id=str(plan.caller.account_id))
    await _publish_current(runtime, job_uuid)
    run = _Run(runtime, plan)
    # SQLite has one writer at a time: a second chunk in flight would only wait.
    depth = CHUNKS_IN_FLIGHT if runtime.db.dialect == "postgresql" else 1
    in_flight: deque[_ChunkTask] = deque()
    checkpoint = plan.checkpoint
    try:
        async with _file_work(plan, runtime) as items:
            async for item in items:
                if isinstance(item, _Analysed):
                    if not await run.analysed(item.total):
                        return await _publish_current(runtime, job_uuid)
                    continue
                before = in_flight[-1] if in_flight else None
                in_flight.append(asyncio.create_task(run.write(checkpoint, item, before)))
                checkpoint += item.size
                if len(in_flight) == depth and not await run.written(await in_flight.popleft()):
                    break
            while in_flight and run.going:
                await run.written(await in_flight.popleft())
    except ImportFileError as error:
        async with runtime.db.transaction() as session:
            await import_runs.fail(session, job_uuid, error)
        return await _publish_current(runtime, job_uuid)
    finally:
        # Chunks still in flight end on their own: committed, or refused at the checkpoint
        # because an earlier one was.
        await asyncio.gather(*in_flight, return_exceptions=True)
    if run.stopped:
        return await _publish_current(runtime, job_uuid)
    if run.out_of_time:
        await runtime.queue.enqueue("run_import", job_id)
        return "continued"
    async with runtime.db.transaction() as session:
        await import_runs.finish(session, plan)
    return await _publish_current(runtime, job_uuid)


async def _failed(ctx: dict[str, Any], reference: str, job_id: str) -> str:
    """The last try failed: the job ends failed, saying where it stopped."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.db.transaction() as session:
        await import_runs.fail_unexpectedly(session, uuid.UUID(job_id), reference)
    return await _publish_current(runtime, uuid.UUID(job_id))


run_import = ending(_run_import, _failed)


# A chunk being written: its job after the chunk, None if the job stopped meanwhile.
_ChunkTask = asyncio.Task[ImportJob | None]
# Chunks written at once on PostgreSQL: the next chunk's reads, decisions and row
# building (Python) overlap the current one's statements and commit (the database).
CHUNKS_IN_FLIGHT = 2


class _Run:
    """One slice of an import's run: writes chunks, and after each one tells watchers,
    refreshes the planner's statistics when due and watches the clock."""

    def __init__(self, runtime: Runtime, plan: import_runs.RunPlan) -> None:
        self.runtime = runtime
        self.plan = plan
        self.deadline = time.monotonic() + runtime.settings.import_slice_seconds
        self.statistics = import_runs.StatisticsSchedule(plan.products_at_start)
        self.published = float("-inf")  # when progress last went out: not yet
        self.stopped = False
        self.out_of_time = False

    @property
    def going(self) -> bool:
        return not (self.stopped or self.out_of_time)

    async def analysed(self, total: int) -> bool:
        async with self.runtime.db.transaction() as session:
            job = await import_runs.analysed(session, self.plan, total)
        if job is None:
            return False
        await self._publish(job)
        return True

    async def write(
        self, checkpoint: int, chunk: import_runs.Chunk, before: _ChunkTask | None
    ) -> ImportJob | None:
        """The chunk written from `checkpoint`, once the chunk `before` it committed; None
        if the job stopped or moved on (then nothing of it commits)."""
        db = self.runtime.db
        async with db.transaction() as session:
            references = await import_runs.create_references(session, self.plan, chunk)
        try:
            async with db.transaction() as session:
                written = await import_runs.write_chunk(session, self.plan, chunk, references)
                # Its commit moves the checkpoint to where this chunk starts.
                if before is not None and await before is None:
                    raise import_runs.JobMovedOn(self.plan.job_id)
                return await import_runs.advance(session, self.plan, checkpoint, written)
        except import_runs.JobMovedOn:
            return None

    async def written(self, job: ImportJob | None) -> bool:
        """After a chunk committed (or was refused): whether to go on."""
        if job is None:
            self.stopped = True
            return False
        # Rows written go out at most once per interval: every state costs each API
        # process a send per watching socket.
        interval = self.runtime.settings.import_progress_interval_seconds
        if time.monotonic() - self.published >= interval:
            await self._publish(job)
        if self.statistics.due(job.checkpoint - self.plan.checkpoint):
            async with self.runtime.db.transaction() as session:
                await import_runs.refresh_statistics(session)
        # A worker asked to stop hands the rest over like a slice that ran out of time.
        self.out_of_time = time.monotonic() >= self.deadline or self.runtime.draining
        return not self.out_of_time

    async def _publish(self, job: ImportJob) -> None:
        await progress.publish(self.runtime.broker, PROGRESS_KIND, job.id, progress_state(job))
        self.published = time.monotonic()


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
            settings = runtime.settings
            sizes = _Sizes(settings.import_chunk_size, settings.import_merge_chunk_size)
            make = functools.partial(_read, plan, path, sizes)
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


@dataclass(frozen=True, slots=True)
class _Sizes:
    """Rows per chunk: read row by row, and read as columns to be merged."""

    rows: int
    merged: int


def _read(
    plan: import_runs.RunPlan, path: Path, sizes: _Sizes
) -> Iterator[_Analysed | import_runs.Chunk]:
    with path.open("rb") as file:
        # Open, the file needs no name: gone with the last process reading it, even one
        # that is killed.
        path.unlink()
        columns = open_columns(file, plan.file_type, plan.mapping)
        records = FileRecords(file, plan.file_type, plan.mapping)
        if plan.checkpoint == 0:
            # The whole file is read before anything is written: a broken one fails undamaged.
            total = records.count() if columns is None else columns.total
            if total == 0:
                raise ImportFileError("aucune ligne de données dans le fichier", "no_rows")
            yield _Analysed(total)
        keys = import_runs.FileKeys()
        if columns is not None:
            # A dry run's chunks go to the row writer, whose memory grows with them.
            size = sizes.rows if plan.dry_run else sizes.merged
            yield from read_chunks(columns, plan, size, keys)
            return
        rows = records.rows(eans_only=plan.checkpoint)
        keys.add(islice(rows, plan.checkpoint))  # rows committed before a restart
        for chunk in _batched(rows, sizes.rows):
            yield import_runs.prepare_chunk(plan, chunk, keys)


async def _publish_current(runtime: Runtime, job_id: uuid.UUID) -> str:
    async with runtime.db.transaction() as session:
        job = await import_runs.load(session, job_id)
    if job is None:
        return "missing"
    await progress.publish(runtime.broker, PROGRESS_KIND, job_id, progress_state(job))
    return job.status
