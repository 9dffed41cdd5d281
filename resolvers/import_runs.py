"""The steps of an import run, each one transaction: begin, analyse, write a chunk, finish.

Every step that moves the job is a compare-and-set on its status (and, for chunks,
on its checkpoint): a paused or cancelled job, or a second worker running the same
job, makes the step a no-op instead of a duplicate write. A chunk's products, its
logs, the counters and the checkpoint commit together, so a run killed half way
continues after the last committed chunk.
"""

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Account, Automation, ImportJob, ImportLog
from pim import metrics
from pim.auth import Caller
from pim.db import on_postgres
from pim.timeutil import utcnow
from resolvers import counts, import_merge
from resolvers.ean import normalize_ean
from resolvers.import_files import ImportFileError, Row
from resolvers.product_writes import (
    Checked,
    CheckedItem,
    WriteItem,
    WriteMode,
    WriteOptions,
    check_items,
)

# Statuses in which a worker has work to do.
RUNNABLE = frozenset({"pending", "analyzing", "processing"})
REPEATED_MESSAGE = "en double dans le fichier : seule la première occurrence est traitée"
_WRITE_MODES: dict[str, WriteMode] = {
    "upsert": "upsert",
    "create_only": "create",
    "update_only": "update",
}


@dataclass(frozen=True, slots=True)
class RunPlan:
    job_id: uuid.UUID
    caller: Caller
    file_type: str
    mapping: dict[str, str] | None
    checkpoint: int
    options: WriteOptions
    dry_run: bool
    products_at_start: int


async def load(session: AsyncSession, job_id: uuid.UUID) -> ImportJob | None:
    return await session.get(ImportJob, job_id, populate_existing=True)


async def begin(session: AsyncSession, job_id: uuid.UUID) -> RunPlan | None:
    """Claim a runnable job (pending becomes analyzing); None when there is nothing to do."""
    job = await session.scalar(select(ImportJob).where(ImportJob.id == job_id).with_for_update())
    if job is None or job.status not in RUNNABLE:
        return None
    if job.status == "pending":
        job.status = "analyzing"
    job.started_at = job.started_at or utcnow()
    job.progressed_at = utcnow()
    account = await session.get_one(Account, job.account_id)
    # The job acts for its account with the right to write products, nothing more.
    caller = Caller(
        account_id=account.id,
        account_name=account.name,
        key_id=job.id,
        key_name=f"import {job.id}",
        scopes=frozenset({"products:write"}),
        strict_ean=account.strict_ean,
    )
    options = WriteOptions(
        mode=_WRITE_MODES[job.mode],
        dry_run=job.dry_run,
        skip_existing=job.mode == "create_only",
        skip_missing=job.mode == "update_only",
        default_supplier_code=job.supplier_code,
    )
    await session.flush()
    return RunPlan(
        job_id=job.id,
        caller=caller,
        file_type=job.file_type,
        mapping=job.mapping,
        checkpoint=job.checkpoint,
        options=options,
        dry_run=job.dry_run,
        products_at_start=await counts.live_products(session, account.id),
    )


def running_status(plan: RunPlan) -> str:
    # A dry run never leaves analysis: it validates every row and writes nothing.
    return "analyzing" if plan.dry_run else "processing"


async def analysed(session: AsyncSession, plan: RunPlan, total: int) -> ImportJob | None:
    result = await session.execute(
        update(ImportJob)
        .where(ImportJob.id == plan.job_id, ImportJob.status.in_(RUNNABLE))
        .values(total_rows=total, status=running_status(plan), progressed_at=utcnow())
    )
    return await load(session, plan.job_id) if _changed(result) else None


async def fail(session: AsyncSession, job_id: uuid.UUID, error: ImportFileError) -> None:
    await _end_failed(session, job_id, error.message)


# Where a run stood, in words, by the status it stopped in.
_STAGES = {"pending": "au démarrage", "analyzing": "pendant l'analyse du fichier"}


async def fail_unexpectedly(session: AsyncSession, job_id: uuid.UUID, error_ref: str) -> None:
    """End a job that kept failing on something other than its file (a bug, a database
    that refuses): say where it stopped, and the reference under which the log has the
    details (never the details themselves: they are internals)."""
    job = await load(session, job_id)
    if job is None or job.status not in RUNNABLE:
        return
    stage = _STAGES.get(job.status, f"après la ligne {job.checkpoint} sur {job.total_rows}")
    await _end_failed(
        session, job_id, f"import interrompu par une erreur interne {stage} (référence {error_ref})"
    )


async def _end_failed(session: AsyncSession, job_id: uuid.UUID, message: str) -> None:
    ended = await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status.in_(RUNNABLE))
        .values(status="failed", error_summary=message, last_error=message, completed_at=utcnow())
    )
    if _changed(ended):
        # The automation that started the job shows how its last run ended.
        await session.execute(
            update(Automation)
            .where(Automation.last_import_job_id == job_id)
            .values(last_status="failed", last_error=message)
            .execution_options(synchronize_session=False)
        )


class FileKeys:
    """The EANs of earlier chunks' rows.

    The writer refuses an EAN repeated within one batch; a repeat in a later chunk
    is refused alike, so the outcome does not depend on where chunks end and a dry
    run announces what the real run does. A million EANs cost some 70 MB here.
    """

    def __init__(self) -> None:
        self._seen: set[str | None] = set()

    def add(self, rows: Iterable[Row]) -> None:
        self._seen.update(key for row in rows if (key := ean_of(row)) is not None)

    def repeated(self, keys: list[str | None]) -> set[int]:
        """Indexes of the rows (by their EANs, see `ean_of`) whose EAN an earlier chunk
        had; then remembers this chunk."""
        seen = self._seen
        indexes = set() if seen.isdisjoint(keys) else {i for i, k in enumerate(keys) if k in seen}
        # Added whole, then None taken out again: a generator skipping it cost half of
        # the reader's EAN bookkeeping.
        seen.update(keys)
        seen.discard(None)
        return indexes


def ean_of(row: Row) -> str | None:
    value = row.data.get("ean")
    return None if value is None else normalize_ean(value)


class Chunk(Protocol):
    """Consecutive rows of the file, checked and ready to write.

    `repeated`: indexes of rows whose EAN an earlier chunk had (see FileKeys); the
    other rows are `written`, and `checked` holds what the writer's own per-item
    checks made of them. A chunk read as columns (import_columns.ColumnChunk) makes
    these Python objects only when asked for them: the merge reads its columns.
    """

    @property
    def size(self) -> int: ...

    @property
    def repeated(self) -> frozenset[int]: ...

    @property
    def rows(self) -> Sequence[Row]: ...

    @property
    def written(self) -> Sequence[Row]: ...

    @property
    def checked(self) -> Sequence[Checked]: ...

    def row(self, i: int) -> Row:
        """The chunk's i-th row."""

    def written_row(self, index: int) -> Row:
        """The row of the written item told by `index`."""

    def given(self, field: str) -> set[str]:
        """The texts the chunk's checked items give for `field`."""

    def merge_items(self) -> import_merge.Items | None: ...


@dataclass(frozen=True, slots=True)
class RowChunk:
    """A chunk read and checked row by row."""

    rows: Sequence[Row]
    repeated: frozenset[int]
    written: Sequence[Row]
    checked: Sequence[Checked]

    @property
    def size(self) -> int:
        return len(self.rows)

    def row(self, i: int) -> Row:
        return self.rows[i]

    def written_row(self, index: int) -> Row:
        return self.written[index]

    def given(self, field: str) -> set[str]:
        return {
            text
            for item in self.checked
            if isinstance(item, CheckedItem) and (text := item.given.get(field))
        }

    def merge_items(self) -> import_merge.Items | None:
        return import_merge.Items.of(self.checked)


def prepare_chunk(plan: RunPlan, rows: Sequence[Row], keys: FileKeys) -> RowChunk:
    """Everything about a chunk that needs no database."""
    repeated = frozenset(keys.repeated([ean_of(row) for row in rows]))
    written = [row for i, row in enumerate(rows) if i not in repeated]
    items = [WriteItem(row.data) for row in written]
    checked = check_items(items, plan.options, strict_ean=plan.caller.strict_ean)
    return RowChunk(rows, repeated, written, checked)


class JobMovedOn(Exception):
    """The job was paused, cancelled or taken further by another run while a chunk was
    being written: that chunk's writes must not commit."""


async def create_references(
    session: AsyncSession, plan: RunPlan, chunk: Chunk
) -> import_merge.References | None:
    """Create the brands and suppliers a chunk names, in a transaction of their own.

    Two chunks in flight then never wait on each other's new brand: the later one
    waits only for the earlier one's commit, at its checkpoint, and never the reverse
    (which would be a deadlock).
    """
    if plan.dry_run:
        return None
    return await import_merge.create_references(
        session, plan.caller.account_id, chunk.given("brand_name"), chunk.given("supplier_code")
    )


@dataclass(frozen=True, slots=True)
class Written:
    """What writing a chunk did, for the job's counters."""

    rows: int
    failed: int
    created: int
    updated: int
    last_error: str | None

    @classmethod
    def total(cls, parts: Sequence["Written"]) -> "Written":
        errors = [part.last_error for part in parts if part.last_error is not None]
        return cls(
            rows=sum(part.rows for part in parts),
            failed=sum(part.failed for part in parts),
            created=sum(part.created for part in parts),
            updated=sum(part.updated for part in parts),
            last_error=errors[-1] if errors else None,
        )


UNSTORABLE_MESSAGE = (
    "ligne non enregistrée : une valeur dépasse ce que la base de données peut stocker"
)


def _cannot_store(error: Exception) -> bool:
    """Whether the database (or its driver) refused a value: a number past its column's
    range, a text it cannot take. Not a lost connection nor a conflict."""
    if isinstance(error, OverflowError | DataError):  # sqlite3 refuses ints past 64 bits
        return True
    if not isinstance(error, DBAPIError):
        return False
    # SQLSTATE class 22, data exception: asyncpg's own checks of parameters raise it too,
    # beneath the adapter's generic error.
    cause: BaseException | None = error.orig
    while cause is not None:
        if str(getattr(cause, "sqlstate", None) or "").startswith("22"):
            return True
        cause = cause.__cause__
    return False


async def write_chunk(
    session: AsyncSession,
    plan: RunPlan,
    chunk: Chunk,
    references: import_merge.References | None = None,
) -> Written:
    """Write one chunk's products and logs; `advance` then moves the job past it.

    A value the database cannot store fails the statement of the whole chunk: the
    chunk is then written in halves, each half that fails in halves again, so only
    the rows holding such values fail, with the reason in the job's logs (a few
    dozen statements per bad row, rather than one write per row of the chunk).
    """
    if not on_postgres(session):
        # SQLite: hold the write lock from the start, or another connection's commit
        # between this chunk's reads and its writes fails the chunk (SQLITE_BUSY_SNAPSHOT).
        # This also opens the transaction: a savepoint opening it would commit on release.
        await session.execute(
            update(ImportJob).where(ImportJob.id == plan.job_id).values(status=ImportJob.status)
        )
    return await _write_storable(session, plan, chunk, references)


async def _write_storable(
    session: AsyncSession, plan: RunPlan, chunk: Chunk, references: import_merge.References | None
) -> Written:
    try:
        async with session.begin_nested():
            return await _write_rows(session, plan, chunk, references)
    except (DBAPIError, OverflowError) as error:
        if not _cannot_store(error):
            raise
    if chunk.size == 1:
        log = _log(plan.job_id, chunk.row(0), "error", "", UNSTORABLE_MESSAGE, utcnow())
        await session.execute(insert(ImportLog), [log])
        return Written(1, 1, 0, 0, _describe(log))
    middle = chunk.size // 2
    first = _part(chunk, 0, middle, earlier=set())
    # A row repeating an EAN of the first half is refused, as the whole chunk's write
    # would have refused it: halving does not change what is written.
    earlier = {
        key
        for row, item in zip(first.written, first.checked, strict=True)
        if isinstance(item, CheckedItem) and (key := ean_of(row)) is not None
    }
    second = _part(chunk, middle, chunk.size, earlier=earlier)
    halves = (first, second)
    return Written.total([await _write_storable(session, plan, h, references) for h in halves])


def _part(chunk: Chunk, start: int, stop: int, *, earlier: set[str]) -> RowChunk:
    """Rows start..stop of the chunk as a chunk of their own; those whose EAN is in
    `earlier` become repeated rows."""
    rows: list[Row] = []
    repeated: set[int] = set()
    written: list[Row] = []
    checked: list[Checked] = []
    # Written rows, and their checks, are the chunk's rows without the repeated ones.
    position = start - sum(1 for i in chunk.repeated if i < start)
    for i in range(start, stop):
        row = chunk.rows[i]
        rows.append(row)
        if i in chunk.repeated:
            repeated.add(len(rows) - 1)
            continue
        item = chunk.checked[position]
        position += 1
        if ean_of(row) in earlier:
            repeated.add(len(rows) - 1)
        else:
            # Results are told by position in the batch written.
            checked.append(dataclasses.replace(item, index=len(written)))
            written.append(row)
    return RowChunk(rows, frozenset(repeated), written, checked)


async def _write_rows(
    session: AsyncSession, plan: RunPlan, chunk: Chunk, references: import_merge.References | None
) -> Written:
    outcome = await import_merge.write_chunk(session, plan.caller, chunk, plan.options, references)
    now = utcnow()
    logs = [
        _log(plan.job_id, chunk.row(i), "error", "ean", REPEATED_MESSAGE, now)
        for i in sorted(chunk.repeated)
    ]
    for result in outcome.results:
        row = chunk.written_row(result.index)
        for level, issues in (("error", result.errors), ("warning", result.warnings)):
            for issue in issues:
                logs.append(_log(plan.job_id, row, level, issue.field, issue.message, now))
        if result.status == "skipped":
            reason = "existe déjà" if plan.options.mode == "create" else "produit introuvable"
            logs.append(_log(plan.job_id, row, "info", "ean", f"ligne ignorée : {reason}", now))
    if logs:
        logs.sort(key=lambda log: log["row_number"])  # stable: a row's logs keep their order
        await session.execute(insert(ImportLog), logs)
    return Written(
        rows=chunk.size,
        failed=outcome.failed + len(chunk.repeated),
        created=outcome.created,
        updated=outcome.updated,
        last_error=next(
            (_describe(log) for log in reversed(logs) if log["level"] == "error"), None
        ),
    )


async def advance(
    session: AsyncSession, plan: RunPlan, checkpoint: int, written: Written
) -> ImportJob:
    """Move the checkpoint from `checkpoint` past a written chunk and count its rows, by
    compare-and-set; raises JobMovedOn if the job stopped or moved on meanwhile."""
    values: dict[str, Any] = {
        "checkpoint": checkpoint + written.rows,
        "successful_rows": ImportJob.successful_rows + written.rows - written.failed,
        "failed_rows": ImportJob.failed_rows + written.failed,
        "products_created": ImportJob.products_created + written.created,
        "products_updated": ImportJob.products_updated + written.updated,
        "progressed_at": utcnow(),
    }
    if written.last_error is not None:
        values["last_error"] = written.last_error
    claimed = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == plan.job_id,
            ImportJob.status == running_status(plan),
            ImportJob.checkpoint == checkpoint,
        )
        .values(values)
    )
    if not _changed(claimed):
        raise JobMovedOn(plan.job_id)
    metrics.import_rows(
        rows=written.rows, created=written.created, updated=written.updated, failed=written.failed
    )
    return await session.get_one(ImportJob, plan.job_id, populate_existing=True)


class StatisticsSchedule:
    """When a run ANALYZEs products (PostgreSQL): after its first chunk, then each time
    the account may have doubled since the last time.

    Measured: on a table that grew since its last ANALYZE, the planner filters the
    whole account instead of using the (account_id, ean) index, and the writer's
    lookup per chunk grew from 5 ms to 600 ms by 40,000 rows (quadratic overall);
    autovacuum comes too late within one import. What the planner lacks is how many
    rows the account has, so only account_id is analysed: 120 ms on 150,000 products.
    An account that starts with a million products is analysed once per run, not at
    chunks 1, 2, 4 … 256 (each 230 ms there).
    """

    def __init__(self, products_at_start: int) -> None:
        self._products = products_at_start
        self._written_then: int | None = None  # rows written at the last ANALYZE

    def due(self, rows_written: int) -> bool:
        then = self._written_then
        if then is not None and rows_written - then < self._products + then:
            return False
        self._written_then = rows_written
        return True


async def refresh_statistics(session: AsyncSession) -> None:
    if on_postgres(session):
        await session.execute(text("ANALYZE products (account_id)"))


def _log(
    job_id: uuid.UUID, row: Row, level: str, field: str, message: str, now: Any
) -> dict[str, Any]:
    value = row.data.get(field)
    return {
        "job_id": job_id, "row_number": row.number, "level": level, "field": field or None,
        "message": message, "value": None if value is None else str(value), "timestamp": now,
    }  # fmt: skip


def _describe(log: dict[str, Any]) -> str:
    where = [f"ligne {log['row_number']}", *([log["field"]] if log["field"] else [])]
    return " : ".join([*where, log["message"]])


async def finish(session: AsyncSession, plan: RunPlan) -> ImportJob | None:
    """completed, or ready for a dry run, with a summary of the failures."""
    job = await load(session, plan.job_id)
    if job is None or job.status != running_status(plan):
        return job
    job.status = "ready" if plan.dry_run else "completed"
    job.completed_at = utcnow()
    job.error_summary = await _error_summary(session, job)
    await session.flush()
    return job


async def _error_summary(session: AsyncSession, job: ImportJob) -> str | None:
    if not job.failed_rows:
        return None
    rows = await session.execute(
        select(ImportLog.field, func.count(func.distinct(ImportLog.row_number)))
        .where(ImportLog.job_id == job.id, ImportLog.level == "error")
        .group_by(ImportLog.field)
        .order_by(ImportLog.field)
    )
    by_field = {field or "row": count for field, count in rows}
    noun = "row" if job.failed_rows == 1 else "rows"
    if len(by_field) == 1:
        (field,) = by_field
        label = "EAN" if field == "ean" else field
        return f"{job.failed_rows} {noun} failed {label} validation"
    details = ", ".join(f"{field}: {count}" for field, count in by_field.items())
    return f"{job.failed_rows} {noun} failed validation ({details})"


def _changed(result: Any) -> bool:
    return bool(result.rowcount)
