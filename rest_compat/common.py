"""What every REST surface shares: the caller dependency, JSON bodies, status codes."""

import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel

from pim.auth import Caller
from pim.responses import OrjsonResponse
from pim.runtime import Runtime
from resolvers.admission import admit, presented_key
from resolvers.bodies import decode_json
from resolvers.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InternalError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    Unauthenticated,
    ValidationFailed,
)
from resolvers.permissions import Operation
from resolvers.validation import parse

M = TypeVar("M", bound=BaseModel)

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    RequestTimeout: 408,
    Conflict: 409,
    PayloadTooLarge: 413,
    ValidationFailed: 422,
    RateLimited: 429,
    InternalError: 500,
}


def status_of(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]  # type: ignore[index]
    return 400


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def caller_with(
    scopes: str | frozenset[str] | Operation | None,
) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency admitting the request from its headers, before its body is read:
    the key, its rate limit, then one of `scopes` (None: the operations check theirs)."""
    # An Operation is a str too: it names its scopes through the permissions table.
    wanted = (
        frozenset({scopes})
        if isinstance(scopes, str) and not isinstance(scopes, Operation)
        else scopes
    )

    async def dependency(request: Request) -> Caller:
        rt = runtime(request)
        admission = await admit(rt.db, rt.limiter, presented_key(request.headers), wanted)
        request.state.rate_window = admission.window
        return admission.admitted()

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
    return decode_json(raw)


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
