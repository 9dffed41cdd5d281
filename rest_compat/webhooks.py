"""Webhook endpoints over REST (/api/v1/webhooks): plain JSON, `items` + `meta` lists.

Every route needs `settings:manage`: checked from the headers before a body is read,
and by the resolvers. Errors are the
plain JSON of rest_compat.errors.plain_error.
"""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z
from resolvers import webhooks
from resolvers.permissions import Operation
from rest_compat import envelopes as shapes
from rest_compat.body_docs import json_body, schema_of
from rest_compat.common import caller_with, listing, parsed_body, runtime

PREFIX = "/api/v1/webhooks"
router = APIRouter(prefix=PREFIX, tags=["Webhooks"], responses=shapes.PLAIN_ERRORS)
authenticated = caller_with(Operation.SETTINGS_MANAGE)


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    events: list[str] = Field(default_factory=lambda: ["*"])
    description: str | None = None
    is_active: bool = True


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    is_active: bool | None = None


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_in_hours: float = webhooks.ROTATION_GRACE_HOURS


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: uuid.UUID


class ReplayRangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: datetime
    until: datetime | None = None


def endpoint_out(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.event_types,
        "is_active": endpoint.is_active,
        "status": webhooks.endpoint_status(endpoint),
        "disabled_at": isoformat_z(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
        "consecutive_failures": endpoint.consecutive_failures,
        "previous_secret_expires_at": isoformat_z(endpoint.previous_secret_expires_at),
        "created_at": isoformat_z(endpoint.created_at),
        "updated_at": isoformat_z(endpoint.updated_at),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def delivery_out(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(delivery.id),
        "endpoint_id": str(delivery.endpoint_id),
        "event_id": str(delivery.event_id),
        "event_type": delivery.event_type,
        "status": delivery.status,
        "is_replay": delivery.is_replay,
        "attempts": delivery.attempts,
        "next_attempt_at": isoformat_z(delivery.next_attempt_at)
        if delivery.status in ("pending", "failed")
        else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "delivered_at": isoformat_z(delivery.delivered_at),
        "created_at": isoformat_z(delivery.created_at),
    }


def attempt_out(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "attempted_at": isoformat_z(attempt.attempted_at),
    }


@router.get("", response_model=shapes.Page[shapes.WebhookEndpoint])
async def list_endpoints(
    request: Request,
    skip: int = Query(0),
    limit: int = Query(100),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        page = await webhooks.list_endpoints(session, caller, limit=limit, offset=skip)
    return listing([endpoint_out(e) for e in page.items], page.total, skip, limit)


@router.post(
    "",
    status_code=201,
    response_model=shapes.WebhookEndpoint,
    openapi_extra=json_body(schema_of(CreateBody)),
)
async def create_endpoint(
    request: Request, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    body = await parsed_body(request, CreateBody)
    rt = runtime(request)
    data = webhooks.EndpointInput(
        url=body.url, event_types=body.events, description=body.description,
        is_active=body.is_active,
    )  # fmt: skip
    async with rt.db.transaction() as session:
        created = await webhooks.create_endpoint(session, caller, data=data, settings=rt.settings)
    return OrjsonResponse(endpoint_out(created.endpoint, created.secret), status_code=201)


@router.get("/{endpoint_id}", response_model=shapes.WebhookEndpoint)
async def get_endpoint(
    request: Request, endpoint_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        endpoint = await webhooks.get_endpoint(session, caller, endpoint_id=endpoint_id)
    return OrjsonResponse(endpoint_out(endpoint))


@router.patch(
    "/{endpoint_id}",
    response_model=shapes.WebhookEndpoint,
    openapi_extra=json_body(schema_of(UpdateBody)),
)
async def update_endpoint(
    request: Request, endpoint_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    body = await parsed_body(request, UpdateBody)
    rt = runtime(request)
    changes = webhooks.EndpointChanges(
        url=body.url, event_types=body.events, description=body.description,
        is_active=body.is_active,
    )  # fmt: skip
    async with rt.db.transaction() as session:
        endpoint = await webhooks.update_endpoint(
            session, caller, endpoint_id=endpoint_id, changes=changes, settings=rt.settings
        )
    return OrjsonResponse(endpoint_out(endpoint))


@router.delete("/{endpoint_id}", response_model=shapes.Empty)
async def delete_endpoint(
    request: Request, endpoint_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    async with runtime(request).db.transaction() as session:
        await webhooks.delete_endpoint(session, caller, endpoint_id=endpoint_id)
    return OrjsonResponse({})


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=shapes.WebhookEndpoint,
    openapi_extra=json_body(schema_of(RotateBody), required=False),
)
async def rotate_secret(
    request: Request, endpoint_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    body = await parsed_body(request, RotateBody, optional=True)
    rt = runtime(request)
    async with rt.db.transaction() as session:
        rotated = await webhooks.rotate_secret(
            session, caller, endpoint_id=endpoint_id, settings=rt.settings,
            expires_in_hours=body.expires_in_hours,
        )  # fmt: skip
    return OrjsonResponse(endpoint_out(rotated.endpoint, rotated.secret))


@router.post("/{endpoint_id}/enable", response_model=shapes.WebhookEndpoint)
async def enable_endpoint(
    request: Request, endpoint_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    async with runtime(request).db.transaction() as session:
        endpoint = await webhooks.enable_endpoint(session, caller, endpoint_id=endpoint_id)
    return OrjsonResponse(endpoint_out(endpoint))


@router.get("/{endpoint_id}/deliveries", response_model=shapes.Page[shapes.WebhookDelivery])
async def list_deliveries(
    request: Request,
    endpoint_id: uuid.UUID,
    status: str | None = None,
    skip: int = Query(0),
    limit: int = Query(100),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        page = await webhooks.list_deliveries(
            session, caller, endpoint_id=endpoint_id, status=status, limit=limit, offset=skip
        )
    return listing([delivery_out(d) for d in page.items], page.total, skip, limit)


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}/attempts",
    response_model=shapes.Page[shapes.WebhookAttempt],
)
async def list_attempts(
    request: Request,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        attempts = await webhooks.list_attempts(
            session, caller, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
    return listing([attempt_out(a) for a in attempts], len(attempts), 0, max(len(attempts), 1))


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    response_model=shapes.WebhookDelivery,
    openapi_extra=json_body(schema_of(ReplayBody)),
)
async def replay_event(
    request: Request, endpoint_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    body = await parsed_body(request, ReplayBody)
    async with runtime(request).db.transaction() as session:
        delivery = await webhooks.replay_event(
            session, caller, endpoint_id=endpoint_id, event_id=body.event_id
        )
    return OrjsonResponse(delivery_out(delivery), status_code=202)


@router.post(
    "/{endpoint_id}/replay-range",
    status_code=202,
    response_model=shapes.ReplayedRange,
    openapi_extra=json_body(schema_of(ReplayRangeBody)),
)
async def replay_range(
    request: Request, endpoint_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    body = await parsed_body(request, ReplayRangeBody)
    async with runtime(request).db.transaction() as session:
        count = await webhooks.replay_range(
            session, caller, endpoint_id=endpoint_id, since=body.since, until=body.until
        )
    return OrjsonResponse({"deliveries_created": count}, status_code=202)
