"""What every REST surface shares: the caller dependency, JSON bodies, status codes."""

import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel

from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.runtime import Runtime
from resolvers import keys
from resolvers.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from resolvers.validation import parse

M = TypeVar("M", bound=BaseModel)

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    ValidationFailed: 422,
    RateLimited: 429,
}


def status_of(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]  # type: ignore[index]
    return 400


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def presented_key(headers: Any) -> str | None:
    """X-API-Key, or Authorization: Bearer — both are accepted everywhere."""
    key = headers.get("x-api-key")
    if key:
        return str(key).strip()
    authorization = headers.get("authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def caller_with(surface_scope: str | None) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: authenticate, apply the key's rate limit, check the surface's scope."""

    async def dependency(request: Request) -> Caller:
        rt = runtime(request)
        caller = await keys.caller_for(rt.db, presented_key(request.headers))
        window = await rt.limiter.hit(caller.key_id, caller.rate_limit_per_minute)
        request.state.rate_window = window
        if not window.allowed:
            raise RateLimited(
                message="Trop de requêtes : limite de la clé atteinte, réessayez plus tard.",
                retry_after=window.retry_after,
            )
        if surface_scope is not None and surface_scope not in caller.scopes:
            raise Forbidden(message=f"Portée requise manquante : {surface_scope}.")
        return caller

    return dependency


def page_meta(total: int, skip: int, limit: int) -> dict[str, Any]:
    """The `meta` of the plain surfaces' lists (Products, Imports, Connectors, Webhooks)."""
    return {
        "total": total,
        "page": skip // limit + 1,
        "per_page": limit,
        "total_pages": math.ceil(total / limit) if total else 0,
        "has_next": skip + limit < total,
        "has_previous": skip > 0,
    }


def listing(items: list[Any], total: int, skip: int, limit: int) -> OrjsonResponse:
    """A plain surface's list response: `items` and their `meta`."""
    return OrjsonResponse({"items": items, "meta": page_meta(total, skip, limit)})


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed.of([FieldError("body", "corps JSON manquant", "missing")])
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed.of(
            [FieldError("body", f"JSON invalide ({exc})", "json_invalid")]
        ) from exc


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ValidationFailed.of([FieldError("body", "objet JSON attendu", "type_error")])
    return body


async def json_array(request: Request) -> list[Any]:
    body = await json_body(request)
    if not isinstance(body, list):
        raise ValidationFailed.of([FieldError("body", "tableau JSON attendu", "type_error")])
    return body


async def parsed_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """A JSON object body checked against `model`; `optional`: an empty body is `{}`."""
    raw = await request.body()
    data = {} if optional and not raw.strip() else await json_object(request)
    parsed, errors = parse(model, data)
    if parsed is None:
        raise ValidationFailed.of(errors)
    return parsed
