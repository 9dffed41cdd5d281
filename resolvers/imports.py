"""File imports: creating jobs, reading them with their logs and preview, and moving them
through their statuses. The rows themselves are read and written by the `run_import`
job (jobs/imports.py, resolvers/import_runs.py)."""

import asyncio
import tempfile
import uuid
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, BinaryIO

from sqlalchemy import Select, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from models import ImportJob, ImportLog
from pim.auth import Caller
from pim.jobs import defer
from pim.timeutil import isoformat_z, parse_iso8601
from resolvers import import_storage, keys
from resolvers.bounds import MAX_INT64, nul_errors, text_errors, window_errors
from resolvers.errors import Conflict, FieldError, NotFound, ValidationFailed
from resolvers.import_files import (
    FileRecords,
    ImportFileError,
    file_type_of,
    validate_mapping,
    validate_row,
)
from resolvers.import_storage import Readable
from resolvers.paging import decode_cursor, encode_cursor
from resolvers.permissions import Operation, require

MODES = ("upsert", "create_only", "update_only")
LOG_LEVELS = ("error", "warning", "info")
MAX_PAGE = 200
# No more work will happen on its own: a progress stream ends at these.
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "ready"})
RUN_IMPORT = "run_import"
# The pim.progress kind of import jobs: topics are "import:<job id>".
PROGRESS_KIND = "import"

# Which statuses each control action may start from, and where it leads.
_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "confirm": (frozenset({"ready"}), "pending"),
    "pause": (frozenset({"pending", "analyzing", "processing"}), "paused"),
    "resume": (frozenset({"paused"}), "processing"),
    "cancel": (frozenset({"pending", "analyzing", "ready", "processing", "paused"}), "cancelled"),
}
ACTIONS = tuple(_TRANSITIONS)
_ACTION_NAMES = {
    "confirm": "confirmer",
    "pause": "mettre en pause",
    "resume": "reprendre",
    "cancel": "annuler",
}


async def create_job(
    session: AsyncSession,
    caller: Caller,
    *,
    file_name: str,
    file: Readable,
    supplier_code: str | None = None,
    dry_run: bool = False,
    mapping: dict[str, str] | None = None,
    mode: str = "upsert",
    automation_id: uuid.UUID | None = None,
) -> ImportJob:
    """Store the file with a new job and start it once the transaction commits.

    The file is only looked at by the job: a broken file makes a failed job with
    its reason, which the client reads like any other outcome.
    """
    require(caller, Operation.IMPORTS_WRITE)
    errors: list[FieldError] = []
    file_type = file_type_of(file_name)
    if file_type is None:
        errors.append(
            FieldError("file", "format non pris en charge (.csv, .xlsx, .json, .xml)", "file_type")
        )
    if mode not in MODES:
        errors.append(
            FieldError("mode", f"valeur non autorisée (attendu : {', '.join(MODES)})", "mode")
        )
    if mapping is not None:
        errors.extend(nul_errors(mapping, "mapping") or validate_mapping(mapping))
    errors += text_errors("supplier_code", supplier_code, 64) + text_errors("file", file_name, None)
    if errors:
        raise ValidationFailed.of(errors)
    await keys.hold_account(session, caller)
    job = ImportJob(
        id=uuid.uuid4(),
        account_id=caller.account_id,
        status="analyzing",
        file_name=file_name[:255],
        file_type=file_type,
        supplier_code=supplier_code or None,
        dry_run=dry_run,
        mode=mode,
        mapping=mapping or None,
        automation_id=automation_id,
    )
    session.add(job)
    await session.flush()
    job.file_size = await import_storage.store(session, job.id, file)
    await session.flush()
    defer(session, RUN_IMPORT, str(job.id))
    return job


async def get_job(session: AsyncSession, caller: Caller, *, job_id: uuid.UUID) -> ImportJob:
    require(caller, Operation.IMPORTS_READ)
    return await _load(session, caller, job_id)


async def _load(
    session: AsyncSession, caller: Caller, job_id: uuid.UUID, *, for_update: bool = False
) -> ImportJob:
    statement = select(ImportJob).where(
        ImportJob.account_id == caller.account_id, ImportJob.id == job_id
    )
    if for_update:
        # Serialises control actions with the worker's chunk commits (PostgreSQL).
        statement = statement.with_for_update()
    job = await session.scalar(statement)
    if job is None:
        raise NotFound(message=f"Import '{job_id}' introuvable.", field="id")
    return job


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    total: int
    # One per item: passed as `after`, the next page starts past that item.
    cursors: list[str] = field(default_factory=list)
    has_next: bool = False


def _check_page(skip: int, limit: int, extra: list[FieldError] | None = None) -> None:
    errors = list(extra or []) + window_errors(limit, skip, MAX_PAGE)
    if errors:
        raise ValidationFailed.of(errors)


async def _page(
    session: AsyncSession, scoped: Select[Any], ordered: Select[Any], skip: int, limit: int
) -> tuple[list[Any], int, bool]:
    """The exact total of `scoped`, then `limit` rows of `ordered` and whether more follow."""
    total = await session.scalar(select(func.count()).select_from(scoped.subquery()))
    rows = list(await session.scalars(ordered.offset(skip).limit(limit + 1)))
    return rows[:limit], total or 0, len(rows) > limit


async def list_jobs(
    session: AsyncSession,
    caller: Caller,
    *,
    skip: int = 0,
    limit: int = 50,
    after: str | None = None,
    automation_id: uuid.UUID | None = None,
) -> Page:
    """Newest first, by offset or after a keyset cursor; `automation_id` keeps one
    automation's runs."""
    require(caller, Operation.IMPORTS_READ)
    _check_page(skip, limit)
    scoped = select(ImportJob).where(ImportJob.account_id == caller.account_id)
    if automation_id is not None:
        scoped = scoped.where(ImportJob.automation_id == automation_id)
    ordered = scoped
    if after is not None:
        created, job_id = decode_cursor(after, 2)
        try:
            key = (parse_iso8601(str(created)), uuid.UUID(str(job_id)))
        except ValueError as exc:
            raise ValidationFailed.of([FieldError("after", "curseur invalide")]) from exc
        ordered = scoped.where(tuple_(ImportJob.created_at, ImportJob.id) < key)
    ordered = ordered.order_by(ImportJob.created_at.desc(), ImportJob.id.desc())
    jobs, total, has_next = await _page(session, scoped, ordered, skip, limit)
    cursors = [encode_cursor([isoformat_z(j.created_at), str(j.id)]) for j in jobs]
    return Page(items=jobs, total=total, cursors=cursors, has_next=has_next)


async def job_logs(
    session: AsyncSession,
    caller: Caller,
    *,
    job_id: uuid.UUID,
    level: str | None = None,
    skip: int = 0,
    limit: int = 50,
    after: str | None = None,
) -> Page:
    """In row order, by offset or after a keyset cursor."""
    require(caller, Operation.IMPORTS_READ)
    wrong_level = level is not None and level not in LOG_LEVELS
    _check_page(
        skip,
        limit,
        [FieldError("level", "valeur non autorisée (attendu : error, warning, info)")]
        if wrong_level
        else [],
    )
    job = await _load(session, caller, job_id)
    scoped = select(ImportLog).where(ImportLog.job_id == job.id)
    if level is not None:
        scoped = scoped.where(ImportLog.level == level)
    ordered = scoped
    if after is not None:
        (seq,) = decode_cursor(after, 1)
        if not isinstance(seq, int) or not 0 <= seq <= MAX_INT64:
            raise ValidationFailed.of([FieldError("after", "curseur invalide")])
        ordered = scoped.where(ImportLog.seq > seq)
    logs, total, has_next = await _page(session, scoped, ordered.order_by(ImportLog.seq), skip,
                                        limit)  # fmt: skip
    return Page(
        items=logs,
        total=total,
        cursors=[encode_cursor([log.seq]) for log in logs],
        has_next=has_next,
    )


@dataclass(slots=True)
class Preview:
    total_rows: int
    rows: list[dict[str, Any]]
    validation_errors: list[dict[str, Any]] = field(default_factory=list)


async def preview(
    session: AsyncSession, caller: Caller, *, job_id: uuid.UUID, limit: int = 10
) -> Preview:
    """The first rows as the import reads them (after mapping) and what is wrong with them."""
    require(caller, Operation.IMPORTS_READ)
    _check_page(0, limit)
    job = await _load(session, caller, job_id)
    try:
        with tempfile.TemporaryFile() as file:
            await import_storage.load_into(session, job.id, file)
            return await asyncio.to_thread(
                _preview, file, job.file_type, job.mapping, job.total_rows, limit, caller.strict_ean
            )
    except ImportFileError as exc:
        raise ValidationFailed.of([FieldError("file", exc.message, exc.code)]) from exc


def _preview(
    file: BinaryIO,
    file_type: str,
    mapping: dict[str, str] | None,
    total_rows: int,
    limit: int,
    strict_ean: bool,
) -> Preview:
    """In a thread: given plain values, not the ORM job, which must not load from there."""
    result = Preview(total_rows=total_rows, rows=[])
    records = FileRecords(file, file_type, mapping)
    if not total_rows:
        # Not analysed yet: count now, so the preview always tells the size.
        result.total_rows = records.count()
    for row in islice(records.rows(), limit):
        result.rows.append(row.data)
        for issue in validate_row(row, strict_ean=strict_ean):
            result.validation_errors.append(
                {
                    "row_number": row.number,
                    "level": issue.level,
                    "field": issue.field,
                    "message": issue.message,
                    "value": issue.value,
                }
            )
    return result


async def control_job(
    session: AsyncSession, caller: Caller, *, job_id: uuid.UUID, action: str
) -> ImportJob:
    """confirm, pause, resume or cancel; anything else than the allowed moves is a Conflict."""
    require(caller, Operation.IMPORTS_WRITE)
    allowed, target = _TRANSITIONS[action]
    job = await _load(session, caller, job_id, for_update=True)
    if job.status not in allowed:
        raise Conflict(
            message=(
                f"Impossible de {_ACTION_NAMES[action]} l'import : son statut est "
                f"« {job.status} » (attendu : {', '.join(sorted(allowed))})."
            ),
            field="status",
        )
    job.status = target
    if action == "confirm":
        # The real run starts over: its counts and logs replace the dry run's.
        job.dry_run = False
        _reset_progress(job)
        await session.execute(delete(ImportLog).where(ImportLog.job_id == job.id))
    elif action == "resume" and job.dry_run:
        job.status = "analyzing"
    await session.flush()
    # The job publishes the new state; after confirm and resume it also does the work.
    defer(session, RUN_IMPORT, str(job.id))
    return job


def _reset_progress(job: ImportJob) -> None:
    job.total_rows = job.successful_rows = job.failed_rows = 0
    job.products_created = job.products_updated = job.checkpoint = 0
    job.started_at = job.completed_at = None
    job.last_error = job.error_summary = None


def progress_state(job: ImportJob) -> dict[str, Any]:
    """What progress subscribers receive."""
    return {
        "id": str(job.id),
        "status": job.status,
        "total_rows": job.total_rows,
        "processed_rows": job.checkpoint,
        "successful_rows": job.successful_rows,
        "failed_rows": job.failed_rows,
        "products_created": job.products_created,
        "products_updated": job.products_updated,
        "last_error": job.last_error,
        "error_summary": job.error_summary,
    }
