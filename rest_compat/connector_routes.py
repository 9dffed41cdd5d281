"""The one set of connector routes, shared by /api/v1/connectors/ (every platform) and by
the platform modules /api/v1/woocommerce/ and /api/v1/magento/ (that platform only).

Plain JSON objects, `items` + `meta` lists; errors through the default plain mapper.
The list answers only with its trailing slash: these routers do not redirect slashes.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from models import Connector, SyncJob
from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z
from resolvers import connectors, sync
from resolvers.bounds import page_window
from resolvers.connectors import SyncStats, TestResult
from resolvers.errors import FieldError, NotFound, ValidationFailed
from resolvers.permissions import Operation
from resolvers.sync import Kind
from rest_compat import envelopes as shapes
from rest_compat.body_docs import json_body, schema_of
from rest_compat.common import caller_with, json_object, listing, runtime

authenticated = caller_with(None)
# The routes that take a body refuse a key without the scope before reading it.
manager = caller_with(Operation.SETTINGS_MANAGE)

CONNECTOR_BODY = json_body(schema_of(connectors.ConnectorFields))


def connector_summary(c: Connector) -> dict[str, Any]:
    return {
        "id": str(c.id), "name": c.name, "platform": c.platform, "status": c.status,
        "last_sync_at": isoformat_z(c.last_sync_at), "created_at": isoformat_z(c.created_at),
    }  # fmt: skip


def connector_detail(c: Connector, stats: SyncStats) -> dict[str, Any]:
    return {
        "id": str(c.id), "name": c.name, "platform": c.platform, "status": c.status,
        "sync_stats": {"products_synced": stats.products_synced,
                       "products_pending": stats.products_pending,
                       "last_error": stats.last_error},
        "last_sync_at": isoformat_z(c.last_sync_at),
        "base_url": c.base_url, "channel": c.channel, "options": c.options or {},
        # Which credential fields are set; their values never leave the server.
        "credentials_set": c.credential_fields or [],
        "created_at": isoformat_z(c.created_at), "updated_at": isoformat_z(c.updated_at),
    }  # fmt: skip


def sync_job_out(job: SyncJob) -> dict[str, Any]:
    state = sync.progress_state(job)
    return {"job_id": state.pop("id"), **state, "created_at": isoformat_z(job.created_at)}


def _id(value: str, name: str = "connector_id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed.of([FieldError(name, "UUID invalide", "uuid_parsing")]) from exc


async def _optional_product_ids(request: Request) -> list[Any] | None:
    """push-products takes an optional body; `product_ids` must be an array when given."""
    if not (await request.body()).strip():
        return None
    body = await json_object(request)
    ids = body.get("product_ids")
    if ids is not None and not isinstance(ids, list):
        raise ValidationFailed.of([FieldError("product_ids", "tableau attendu", "type_error")])
    return ids


def connector_router(
    prefix: str, platform: str | None = None, tag: str = "Connectors"
) -> APIRouter:
    """The connector routes under `prefix`, for every platform or for one."""
    router = APIRouter(
        prefix=prefix, tags=[tag], redirect_slashes=False, responses=shapes.PLAIN_ERRORS
    )

    @router.api_route("", methods=["GET", "POST"], include_in_schema=False)
    async def without_slash() -> None:
        # The app would otherwise redirect; the published contract answers 404 here.
        raise NotFound(
            message=f"Route introuvable : la liste est à {prefix}/ (barre oblique finale)."
        )

    @router.get("/", response_model=shapes.Page[shapes.ConnectorSummary])
    async def list_connectors(
        request: Request,
        page: int = Query(1),
        per_page: int = Query(50),
        caller: Caller = Depends(authenticated),
    ) -> OrjsonResponse:
        offset = page_window(page, per_page, connectors.MAX_PAGE_SIZE, size_field="per_page")
        async with runtime(request).db.read() as session:
            result = await connectors.list_connectors(
                session, caller, platform=platform, limit=per_page, offset=offset
            )
        items = [connector_summary(c) for c in result.connectors]
        return listing(items, result.total, offset, per_page)

    @router.post(
        "/", status_code=201, response_model=shapes.ConnectorDetail, openapi_extra=CONNECTOR_BODY
    )
    async def create_connector(
        request: Request, caller: Caller = Depends(manager)
    ) -> OrjsonResponse:
        data = await json_object(request)
        rt = runtime(request)
        async with rt.db.transaction() as session:
            created = await connectors.create_connector(
                session, caller, settings=rt.settings, data=data, platform=platform
            )
            stats = await connectors.sync_stats(session, created)
        return OrjsonResponse(connector_detail(created, stats), status_code=201)

    @router.get("/{connector_id}", response_model=shapes.ConnectorDetail)
    async def get_connector(
        request: Request, connector_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        async with runtime(request).db.read() as session:
            found = await connectors.get_connector(
                session, caller, id=_id(connector_id), platform=platform
            )
            stats = await connectors.sync_stats(session, found)
        return OrjsonResponse(connector_detail(found, stats))

    @router.patch(
        "/{connector_id}", response_model=shapes.ConnectorDetail, openapi_extra=CONNECTOR_BODY
    )
    async def update_connector(
        request: Request, connector_id: str, caller: Caller = Depends(manager)
    ) -> OrjsonResponse:
        data = await json_object(request)
        rt = runtime(request)
        async with rt.db.transaction() as session:
            updated = await connectors.update_connector(
                session, caller, settings=rt.settings, id=_id(connector_id), data=data,
                platform=platform,
            )  # fmt: skip
            stats = await connectors.sync_stats(session, updated)
        return OrjsonResponse(connector_detail(updated, stats))

    @router.delete("/{connector_id}", status_code=204)
    async def delete_connector(
        request: Request, connector_id: str, caller: Caller = Depends(authenticated)
    ) -> Response:
        async with runtime(request).db.transaction() as session:
            await connectors.delete_connector(
                session, caller, id=_id(connector_id), platform=platform
            )
        return Response(status_code=204)

    @router.post("/{connector_id}/test", response_model=shapes.ConnectorTest)
    async def test_connector(
        request: Request, connector_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        rt = runtime(request)
        async with rt.db.transaction() as session:
            config = await connectors.config_to_test(
                session, caller, settings=rt.settings, id=_id(connector_id), platform=platform
            )
        result: TestResult = await connectors.test_connector(config, settings=rt.settings)
        return OrjsonResponse(
            {"success": result.success, "platform": result.platform,
             "latency_ms": result.latency_ms, "message": result.message}
        )  # fmt: skip

    async def _start(
        request: Request, connector_id: str, caller: Caller, kind: Kind,
        product_ids: list[Any] | None = None,
    ) -> OrjsonResponse:  # fmt: skip
        async with runtime(request).db.transaction() as session:
            queued = await sync.start_sync(
                session, caller, connector_id=_id(connector_id), kind=kind,
                product_ids=product_ids, platform=platform,
            )  # fmt: skip
        body: dict[str, Any] = {"job_id": str(queued.job.id), "status": queued.job.status}
        if queued.products_queued is not None:
            body["products_queued"] = queued.products_queued
        return OrjsonResponse(body, status_code=202)

    @router.post(
        "/{connector_id}/sync/push-products", status_code=202, response_model=shapes.SyncQueued
    )
    async def push_products(
        request: Request, connector_id: str, caller: Caller = Depends(manager)
    ) -> OrjsonResponse:
        ids = await _optional_product_ids(request)
        return await _start(request, connector_id, caller, "push-products", ids)

    @router.post(
        "/{connector_id}/sync/pull-products", status_code=202, response_model=shapes.SyncQueued
    )
    async def pull_products(
        request: Request, connector_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        return await _start(request, connector_id, caller, "pull-products")

    @router.post(
        "/{connector_id}/sync/push-stock", status_code=202, response_model=shapes.SyncQueued
    )
    async def push_stock(
        request: Request, connector_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        return await _start(request, connector_id, caller, "push-stock")

    @router.post(
        "/{connector_id}/sync/push-prices", status_code=202, response_model=shapes.SyncQueued
    )
    async def push_prices(
        request: Request, connector_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        return await _start(request, connector_id, caller, "push-prices")

    @router.get("/{connector_id}/sync/jobs", response_model=shapes.SyncJobs)
    async def list_sync_jobs(
        request: Request, connector_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        async with runtime(request).db.read() as session:
            jobs = await sync.list_sync_jobs(
                session, caller, connector_id=_id(connector_id), platform=platform
            )
        return OrjsonResponse({"items": [sync_job_out(j) for j in jobs]})

    @router.get("/{connector_id}/sync/jobs/{job_id}", response_model=shapes.SyncJob)
    async def get_sync_job(
        request: Request, connector_id: str, job_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        async with runtime(request).db.read() as session:
            job = await sync.get_sync_job(
                session, caller, id=_id(job_id, "job_id"), connector_id=_id(connector_id)
            )
        return OrjsonResponse(sync_job_out(job))

    @router.post("/{connector_id}/sync/jobs/{job_id}/cancel", response_model=shapes.SyncJob)
    async def cancel_sync_job(
        request: Request, connector_id: str, job_id: str, caller: Caller = Depends(authenticated)
    ) -> OrjsonResponse:
        async with runtime(request).db.transaction() as session:
            job = await sync.cancel_sync_job(
                session, caller, id=_id(job_id, "job_id"), connector_id=_id(connector_id)
            )
        return OrjsonResponse(sync_job_out(job))

    return router
