"""Imports API, automations (/api/v1/imports/automations): plain JSON, `items` + `meta` lists."""

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from models import Automation
from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z
from resolvers import automations
from rest_compat import envelopes as shapes
from rest_compat.body_docs import json_body, schema_of
from rest_compat.common import json_object, listing, runtime
from rest_compat.imports import PREFIX, authenticated, writer

# Its own router under the Imports API's prefix, with the same authentication and paging.
router = APIRouter(prefix=PREFIX, tags=["Imports"], responses=shapes.PLAIN_ERRORS)


def created_out(a: Automation) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "name": a.name,
        "schedule": a.schedule,
        "is_active": a.is_active,
        "created_at": isoformat_z(a.created_at),
    }


def automation_out(a: Automation) -> dict[str, Any]:
    return created_out(a) | {
        "supplier_code": a.supplier_code,
        "file_source": automations.source_view(a),
        "mapping": a.mapping,
        "next_run_at": isoformat_z(a.next_run_at),
        "last_run_at": isoformat_z(a.last_run_at),
        "last_status": a.last_status,
        "last_error": a.last_error,
        "last_import_job_id": str(a.last_import_job_id) if a.last_import_job_id else None,
        "updated_at": isoformat_z(a.updated_at),
    }


@router.post(
    "/automations",
    status_code=201,
    response_model=shapes.AutomationCreated,
    openapi_extra=json_body(schema_of(automations.AutomationIn)),
)
async def create_automation(request: Request, caller: Caller = Depends(writer)) -> OrjsonResponse:
    body = await json_object(request)
    rt = runtime(request)
    async with rt.db.transaction() as session:
        automation = await automations.create_automation(
            session, caller, data=body, settings=rt.settings
        )
    return OrjsonResponse(created_out(automation), status_code=201)


@router.get("/automations", response_model=shapes.Page[shapes.Automation])
async def list_automations(
    request: Request,
    skip: int = Query(0),
    limit: int = Query(50),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        page = await automations.list_automations(session, caller, skip=skip, limit=limit)
    return listing([automation_out(a) for a in page.items], page.total, skip, limit)


@router.get("/automations/{automation_id}", response_model=shapes.Automation)
async def get_automation(
    request: Request, automation_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        automation = await automations.get_automation(session, caller, automation_id=automation_id)
    return OrjsonResponse(automation_out(automation))


@router.patch(
    "/automations/{automation_id}",
    response_model=shapes.Automation,
    openapi_extra=json_body(schema_of(automations.AutomationPatch)),
)
async def update_automation(
    request: Request, automation_id: uuid.UUID, caller: Caller = Depends(writer)
) -> OrjsonResponse:
    body = await json_object(request)
    rt = runtime(request)
    async with rt.db.transaction() as session:
        automation = await automations.update_automation(
            session, caller, automation_id=automation_id, changes=body, settings=rt.settings
        )
    return OrjsonResponse(automation_out(automation))


@router.delete("/automations/{automation_id}", status_code=204)
async def delete_automation(
    request: Request, automation_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> Response:
    async with runtime(request).db.transaction() as session:
        await automations.delete_automation(session, caller, automation_id=automation_id)
    return Response(status_code=204)


@router.post("/automations/{automation_id}/run", status_code=202, response_model=shapes.Queued)
async def run_automation(
    request: Request, automation_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    async with runtime(request).db.transaction() as session:
        automation = await automations.run_automation_now(
            session, caller, automation_id=automation_id
        )
    return OrjsonResponse({"id": str(automation.id), "status": "queued"}, status_code=202)
