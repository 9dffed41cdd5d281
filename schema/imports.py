"""GraphQL types, fields and the progress subscription for file imports."""

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from models import ImportJob as ImportJobModel
from models import ImportLog as ImportLogModel
from resolvers import imports, job_progress
from resolvers.errors import DomainError
from schema.context import Info, graphql_error, parse_id, subscription_caller
from schema.errors import UserError, run_mutation, run_query
from schema.execution import shared_payload
from schema.products import PageInfo


@strawberry.enum(description="How rows meet existing products.")
class ImportMode(Enum):
    UPSERT = "upsert"
    CREATE_ONLY = "create_only"
    UPDATE_ONLY = "update_only"


@strawberry.type(
    description="A file import. `status`: pending, analyzing, ready (dry run done), "
    "processing, paused, completed, failed or cancelled."
)
class ImportJob:
    id: strawberry.ID
    file_name: str
    file_type: str
    file_size: int
    status: str
    total_rows: int
    processed_rows: int = strawberry.field(description="Rows already committed (checkpoint).")
    successful_rows: int
    failed_rows: int
    products_created: int
    products_updated: int
    supplier_code: str | None
    dry_run: bool
    mode: ImportMode
    mapping: JSON | None = strawberry.field(description="File column → product field.")
    automation_id: strawberry.ID | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_summary: str | None

    @classmethod
    def from_model(cls, job: ImportJobModel) -> "ImportJob":
        return cls(
            id=strawberry.ID(str(job.id)),
            file_name=job.file_name,
            file_type=job.file_type,
            file_size=job.file_size,
            status=job.status,
            total_rows=job.total_rows,
            processed_rows=job.checkpoint,
            successful_rows=job.successful_rows,
            failed_rows=job.failed_rows,
            products_created=job.products_created,
            products_updated=job.products_updated,
            supplier_code=job.supplier_code,
            dry_run=job.dry_run,
            mode=ImportMode(job.mode),
            mapping=cast(JSON, job.mapping),
            automation_id=strawberry.ID(str(job.automation_id)) if job.automation_id else None,
            created_at=job.created_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            error_summary=job.error_summary,
        )


@strawberry.type(description="A row's error, warning or note during an import.")
class ImportLog:
    row_number: int | None
    level: str
    field: str | None
    message: str
    value: str | None
    timestamp: datetime

    @classmethod
    def from_model(cls, log: ImportLogModel) -> "ImportLog":
        return cls(
            row_number=log.row_number,
            level=log.level,
            field=log.field,
            message=log.message,
            value=log.value,
            timestamp=log.timestamp,
        )


@strawberry.type
class ImportJobEdge:
    cursor: str
    node: ImportJob


@strawberry.type(description="A page of import jobs (Relay connection), newest first.")
class ImportJobConnection:
    edges: list[ImportJobEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class ImportLogEdge:
    cursor: str
    node: ImportLog


@strawberry.type(description="A page of a job's row logs (Relay connection), in row order.")
class ImportLogConnection:
    edges: list[ImportLogEdge]
    page_info: PageInfo
    total_count: int


def _page_info(page: imports.Page) -> PageInfo:
    end = page.cursors[-1] if page.cursors else None
    return PageInfo(has_next_page=page.has_next, end_cursor=end)


@strawberry.type(description="The first rows after column mapping, and what is wrong with them.")
class ImportPreview:
    total_rows: int
    rows: list[JSON]
    validation_errors: list[JSON]


@strawberry.type(description="A job's progress, as the worker publishes it after each chunk.")
class ImportProgress:
    id: strawberry.ID
    status: str
    total_rows: int
    processed_rows: int
    successful_rows: int
    failed_rows: int
    products_created: int
    products_updated: int
    last_error: str | None
    error_summary: str | None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ImportProgress":
        return cls(
            id=strawberry.ID(state["id"]),
            status=state["status"],
            total_rows=state["total_rows"],
            processed_rows=state["processed_rows"],
            successful_rows=state["successful_rows"],
            failed_rows=state["failed_rows"],
            products_created=state["products_created"],
            products_updated=state["products_updated"],
            last_error=state.get("last_error"),
            error_summary=state.get("error_summary"),
        )


@strawberry.type
class ImportJobPayload:
    job: ImportJob | None
    errors: list[UserError]


@strawberry.type
class ImportQuery:
    @strawberry.field(description="One import job of the account.")
    async def import_job(self, info: Info, id: strawberry.ID) -> ImportJob:
        job = await run_query(info, imports.get_job, job_id=parse_id(id))
        return ImportJob.from_model(job)

    @strawberry.field(description="Import jobs, newest first; `after` is an edge's cursor.")
    async def import_jobs(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> ImportJobConnection:
        page = await run_query(info, imports.list_jobs, limit=first, after=after)
        edges = [ImportJobEdge(cursor=c, node=ImportJob.from_model(j))
                 for c, j in zip(page.cursors, page.items, strict=True)]  # fmt: skip
        return ImportJobConnection(edges=edges, page_info=_page_info(page), total_count=page.total)

    @strawberry.field(description="A job's row logs; `level`: error, warning or info.")
    async def import_job_logs(
        self, info: Info, id: strawberry.ID, level: str | None = None, first: int = 50,
        after: str | None = None,
    ) -> ImportLogConnection:  # fmt: skip
        page = await run_query(
            info, imports.job_logs, job_id=parse_id(id), level=level, limit=first, after=after
        )
        edges = [ImportLogEdge(cursor=c, node=ImportLog.from_model(log))
                 for c, log in zip(page.cursors, page.items, strict=True)]  # fmt: skip
        return ImportLogConnection(edges=edges, page_info=_page_info(page), total_count=page.total)

    @strawberry.field(description="The first rows of the file as the import reads them.")
    async def import_job_preview(
        self, info: Info, id: strawberry.ID, limit: int = 10
    ) -> ImportPreview:
        result = await run_query(info, imports.preview, job_id=parse_id(id), limit=limit)
        return ImportPreview(
            total_rows=result.total_rows,
            rows=cast(list[JSON], result.rows),
            validation_errors=cast(list[JSON], result.validation_errors),
        )


def _control(action: str, description: str) -> Any:
    """One mutation per control action, all alike: a job or typed errors (CONFLICT…)."""

    async def resolve(info: Info, id: strawberry.ID) -> ImportJobPayload:
        job, errors = await run_mutation(
            info,
            lambda s, caller: imports.control_job(s, caller, job_id=parse_id(id), action=action),
        )
        return ImportJobPayload(job=ImportJob.from_model(job) if job else None, errors=errors)

    return strawberry.mutation(resolver=resolve, description=description)


@strawberry.type
class ImportMutation:
    @strawberry.mutation(
        description="Upload a file (multipart request) and start importing it; "
        "`dryRun` only validates, then `confirmImportJob` imports."
    )
    async def create_import_job(
        self,
        info: Info,
        file: Upload,
        supplier_code: str | None = None,
        dry_run: bool = False,
        mapping: JSON | None = None,
        mode: ImportMode = ImportMode.UPSERT,
    ) -> ImportJobPayload:
        # On FastAPI an Upload is Starlette's UploadFile.
        upload = cast(UploadFile, file)
        try:
            job, errors = await run_mutation(
                info,
                lambda s, caller: imports.create_job(
                    s,
                    caller,
                    file_name=upload.filename or "",
                    file=upload,
                    supplier_code=supplier_code,
                    dry_run=dry_run,
                    mapping=cast(dict[str, str] | None, mapping),
                    mode=mode.value,
                ),
            )
        finally:
            await upload.close()  # its temporary file, at once
        return ImportJobPayload(job=ImportJob.from_model(job) if job else None, errors=errors)

    confirm_import_job: ImportJobPayload = _control(
        "confirm", "Turn a ready dry run into the real import."
    )
    pause_import_job: ImportJobPayload = _control(
        "pause", "Pause a running import after its current chunk."
    )
    resume_import_job: ImportJobPayload = _control(
        "resume", "Resume a paused import where it stopped."
    )
    cancel_import_job: ImportJobPayload = _control(
        "cancel", "Cancel an import; rows already committed stay."
    )


@strawberry.type
class ImportSubscription:
    @strawberry.subscription(
        description="A job's progress over websocket (graphql-transport-ws; the API key "
        "goes in connection_init as X-API-Key or Authorization): the current state "
        "first, then every change, ending at completed, failed, cancelled or ready."
    )
    async def import_job_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[ImportProgress, None]:
        runtime = info.context.runtime
        try:
            caller = await subscription_caller(info)
            states = job_progress.watch(
                runtime.db, runtime.broker, caller, job_progress.IMPORTS, parse_id(id)
            )
            async for state in states:
                yield shared_payload(ImportProgress.from_state, state)
        except DomainError as exc:
            raise graphql_error(exc) from exc
