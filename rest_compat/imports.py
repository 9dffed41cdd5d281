"""The Imports API (/api/v1/imports): file import jobs, their control, logs and preview.

Bearer (or X-API-Key); scopes imports:read and imports:write, checked by the
resolvers; errors as plain JSON (rest_compat.errors.plain_error).
"""

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import FormData, UploadFile

from models import ImportJob, ImportLog
from pim.auth import Caller
from pim.request_body import BodyRefused, budget_of
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z
from resolvers import imports
from resolvers.errors import FieldError, ValidationFailed
from resolvers.permissions import Operation
from rest_compat import envelopes as shapes
from rest_compat.common import caller_with, listing, runtime

PREFIX = "/api/v1/imports"
router = APIRouter(prefix=PREFIX, tags=["Imports"], responses=shapes.PLAIN_ERRORS)
# The operations check scopes and bounds themselves, for GraphQL alike.
authenticated = caller_with(None)
# Routes that take a body (an upload, an automation) refuse a key without the scope
# before reading any of it.
writer = caller_with(Operation.IMPORTS_WRITE)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def job_out(job: ImportJob) -> dict[str, Any]:
    return {
        **imports.progress_state(job),
        "file_name": job.file_name,
        "file_type": job.file_type,
        "file_size": job.file_size,
        "supplier_code": job.supplier_code,
        "dry_run": job.dry_run,
        "mode": job.mode,
        "mapping": job.mapping,
        "automation_id": str(job.automation_id) if job.automation_id else None,
        "created_at": isoformat_z(job.created_at),
        "started_at": isoformat_z(job.started_at),
        "completed_at": isoformat_z(job.completed_at),
    }


def log_out(log: ImportLog) -> dict[str, Any]:
    return {
        "row_number": log.row_number,
        "level": log.level,
        "field": log.field,
        "message": log.message,
        "value": log.value,
        "timestamp": isoformat_z(log.timestamp),
    }


def _form_bool(value: Any, name: str) -> bool:
    text = str(value or "").strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValidationFailed.of([FieldError(name, "booléen attendu (true ou false)", "bool_parsing")])


def _form_mapping(value: Any) -> dict[str, str] | None:
    if value is None or not str(value).strip():
        return None
    try:
        mapping = orjson.loads(str(value))
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed.of(
            [FieldError("mapping", f"JSON invalide ({exc})", "json_invalid")]
        ) from exc
    if not isinstance(mapping, dict):
        raise ValidationFailed.of([FieldError("mapping", "objet JSON attendu", "type_error")])
    return mapping


# The form is read by hand (errors in the plain envelope); this documents it.
_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": ".csv, .xlsx, .json or .xml"},
                        "supplier_code": {"type": "string"},
                        "dry_run": {"type": "boolean", "default": False},
                        "mapping": {"type": "string",
                                    "description": "JSON object: file column → product field"},
                        "mode": {"type": "string", "default": "upsert",
                                 "enum": list(imports.MODES)},
                    },
                }
            }
        },
    }
}  # fmt: skip


@router.post(
    "/jobs", status_code=201, response_model=shapes.ImportJobCreated, openapi_extra=_UPLOAD_FORM
)
async def create_job(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    budget_of(request.scope).allow(runtime(request).settings.max_upload_bytes)
    try:
        # Starlette spools the file to disk past 1 MB; the other fields are a handful of
        # words (1 MB each at most), so a thousand of them are not kept in memory.
        form = await request.form(max_files=1, max_fields=16)
    except BodyRefused:
        raise
    except Exception as exc:  # python-multipart rejects malformed bodies with its own errors
        raise ValidationFailed.of(
            [FieldError("file", "corps multipart/form-data attendu", "multipart")]
        ) from exc
    try:
        job = await _create_job(request, caller, form)
    finally:
        await form.close()  # the upload's temporary file, at once
    body = {"id": str(job.id), "status": job.status, "file_name": job.file_name,
            "file_type": job.file_type}  # fmt: skip
    return OrjsonResponse(body, status_code=201)


async def _create_job(request: Request, caller: Caller, form: FormData) -> ImportJob:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationFailed.of([FieldError("file", "fichier obligatoire", "missing")])
    supplier_code = form.get("supplier_code")
    async with runtime(request).db.transaction() as session:
        return await imports.create_job(
            session,
            caller,
            file_name=upload.filename or "",
            file=upload,
            supplier_code=str(supplier_code).strip() if supplier_code else None,
            dry_run=_form_bool(form.get("dry_run"), "dry_run"),
            mapping=_form_mapping(form.get("mapping")),
            mode=str(form.get("mode") or "upsert"),
        )


@router.get("/jobs", response_model=shapes.Page[shapes.ImportJob])
async def list_jobs(
    request: Request,
    skip: int = Query(0),
    limit: int = Query(50),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        page = await imports.list_jobs(session, caller, skip=skip, limit=limit)
    return listing([job_out(j) for j in page.items], page.total, skip, limit)


@router.get("/jobs/{job_id}", response_model=shapes.ImportJob)
async def get_job(
    request: Request, job_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        job = await imports.get_job(session, caller, job_id=job_id)
    return OrjsonResponse(job_out(job))


def _control_route(action: str) -> Any:
    async def control(
        request: Request, job_id: uuid.UUID, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        async with runtime(request).db.transaction() as session:
            job = await imports.control_job(session, caller, job_id=job_id, action=action)
        return OrjsonResponse({"id": str(job.id), "status": job.status})

    return control


# confirm (a ready dry run), pause, resume, cancel: {id, status}, 409 when not allowed.
for _action in imports.ACTIONS:
    router.add_api_route(
        f"/jobs/{{job_id}}/{_action}",
        _control_route(_action),
        methods=["POST"],
        name=_action,
        response_model=shapes.ImportJobState,
    )


@router.get("/jobs/{job_id}/logs", response_model=shapes.Page[shapes.ImportLog])
async def logs(
    request: Request,
    job_id: uuid.UUID,
    level: str | None = Query(None),
    skip: int = Query(0),
    limit: int = Query(50),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        page = await imports.job_logs(
            session, caller, job_id=job_id, level=level, skip=skip, limit=limit
        )
    return listing([log_out(log) for log in page.items], page.total, skip, limit)


@router.get("/jobs/{job_id}/preview", response_model=shapes.ImportPreview)
async def preview(
    request: Request,
    job_id: uuid.UUID,
    limit: int = Query(10),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        result = await imports.preview(session, caller, job_id=job_id, limit=limit)
    return OrjsonResponse(
        {
            "total_rows": result.total_rows,
            "preview": result.rows,
            "validation_errors": result.validation_errors,
        }
    )
