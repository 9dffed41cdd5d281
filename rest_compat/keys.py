"""API keys over REST (/api/v1/keys): plain JSON, `items` + `meta` lists.

Every route needs `settings:manage` (checked by the resolvers). Errors are the plain
JSON of rest_compat.errors.plain_error. The plain key is in the creation and rotation
responses only.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from models import ApiKey
from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.timeutil import isoformat_z, utcnow
from resolvers import keys
from rest_compat.body_docs import json_body, schema_of
from rest_compat.common import caller_with, listing, parsed_body, runtime
from rest_compat.envelopes import PLAIN_ERRORS, ApiKeyOut, Page

PREFIX = "/api/v1/keys"
router = APIRouter(prefix=PREFIX, tags=["API keys"], responses=PLAIN_ERRORS)
HOUR = timedelta(hours=1)
authenticated = caller_with(None)


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=keys.MAX_NAME_LENGTH)
    scopes: list[str] = Field(max_length=64)
    rate_limit_per_minute: int | None = None
    expires_at: datetime | None = None


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # How long the replaced key keeps working; 0 refuses it at once.
    grace_period_hours: float = Field(default=24, ge=0, le=keys.MAX_ROTATION_GRACE // HOUR)


def key_out(key: ApiKey, plain: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(key.id),
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes,
        "rate_limit_per_minute": key.rate_limit_per_minute,
        "created_at": isoformat_z(key.created_at),
        "last_used_at": isoformat_z(key.last_used_at),
        "expires_at": isoformat_z(key.expires_at),
        "revoked_at": isoformat_z(key.revoked_at),
        "active": keys.is_active(key, utcnow()),
    }
    if plain is not None:
        out["key"] = plain
    return out


@router.get("", response_model=Page[ApiKeyOut])
async def list_keys(
    request: Request,
    skip: int = Query(0),
    limit: int = Query(100),
    caller: Caller = Depends(authenticated),
) -> OrjsonResponse:
    async with runtime(request).db.read() as session:
        page = await keys.list_keys_for(session, caller, limit=limit, offset=skip)
    return listing([key_out(k) for k in page.items], page.total, skip, limit)


@router.post(
    "", status_code=201, response_model=ApiKeyOut, openapi_extra=json_body(schema_of(CreateBody))
)
async def create_key(request: Request, caller: Caller = Depends(authenticated)) -> OrjsonResponse:
    body = await parsed_body(request, CreateBody)
    async with runtime(request).db.transaction() as session:
        created = await keys.create_key_for(
            session, caller, name=body.name, scopes=body.scopes,
            rate_limit_per_minute=body.rate_limit_per_minute, expires_at=body.expires_at,
        )  # fmt: skip
    return OrjsonResponse(key_out(created.key, created.plain), status_code=201)


@router.delete("/{key_id}", response_model=ApiKeyOut)
async def revoke_key(
    request: Request, key_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    async with runtime(request).db.transaction() as session:
        key = await keys.revoke_key(session, key_id=key_id, caller=caller)
    return OrjsonResponse(key_out(key))


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyOut,
    openapi_extra=json_body(schema_of(RotateBody), required=False),
)
async def rotate_key(
    request: Request, key_id: uuid.UUID, caller: Caller = Depends(authenticated)
) -> OrjsonResponse:
    body = await parsed_body(request, RotateBody, optional=True)
    async with runtime(request).db.transaction() as session:
        created = await keys.rotate_key(
            session, key_id=key_id, caller=caller, grace=timedelta(hours=body.grace_period_hours)
        )
    return OrjsonResponse(key_out(created.key, created.plain), status_code=201)
