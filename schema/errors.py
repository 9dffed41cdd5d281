"""Typed errors for GraphQL payloads, and the two ways fields call resolvers:
`run_query` for reads, `run_mutation` for writes.

Expected failures of a mutation (validation, not found, conflict) come back as
data in `errors`; a missing key, a missing scope or a rate limit is a top-level
GraphQL error with an `extensions.code`, for queries and mutations alike.
"""

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, TypeVar

import strawberry

from pim.auth import Caller
from pim.db import DbSession
from resolvers.errors import (
    DomainError,
    FieldError,
    Forbidden,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from schema.context import Info, graphql_error

T = TypeVar("T")


@strawberry.enum(description="Why an operation or a batch item failed.")
class ErrorCode(Enum):
    VALIDATION_FAILED = "validation_failed"
    INVALID = "invalid"
    MISSING = "missing"
    INVALID_EAN = "invalid_ean"
    EAN_CHECKSUM = "ean_checksum"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    SCOPE_MISSING = "scope_missing"
    TOO_MANY = "too_many"
    OTHER = "other"

    @classmethod
    def of(cls, code: str) -> "ErrorCode":
        try:
            return cls(code)
        except ValueError:
            return cls.INVALID if code else cls.OTHER


@strawberry.type(description="A failure the client can act on: which field, why, and a code.")
class UserError:
    field: str | None
    message: str
    code: ErrorCode

    @classmethod
    def from_field_error(cls, error: FieldError) -> "UserError":
        return cls(field=error.field or None, message=error.message, code=ErrorCode.of(error.code))

    @classmethod
    def from_domain(cls, exc: DomainError) -> list["UserError"]:
        if isinstance(exc, ValidationFailed) and exc.errors:
            return [cls.from_field_error(e) for e in exc.errors]
        return [cls(field=exc.field, message=exc.message, code=ErrorCode.of(exc.code))]


_TOP_LEVEL = (Unauthenticated, Forbidden, RateLimited)


async def run_query(info: Info, resolver: Callable[..., Awaitable[T]], **kwargs: Any) -> T:
    """Call a read resolver in its own read unit; domain errors become GraphQL errors."""
    caller = info.context.caller()
    try:
        async with info.context.runtime.db.read() as session:
            return await resolver(session, caller, **kwargs)
    except DomainError as exc:
        raise graphql_error(exc) from exc


async def user_errors(run: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run a mutation body; expected failures become typed errors in the payload."""
    try:
        return await run(), []
    except _TOP_LEVEL as exc:
        raise graphql_error(exc) from exc
    except DomainError as exc:
        return None, UserError.from_domain(exc)


async def run_mutation(
    info: Info, body: Callable[[DbSession, Caller], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Call a mutation's resolvers in one transaction, as the caller: `body` gets the
    session and the caller; expected failures (argument parsing included) become typed
    errors in the payload, a missing key or scope a top-level error."""

    async def run() -> T:
        caller = info.context.caller()
        async with info.context.runtime.db.transaction() as session:
            return await body(session, caller)

    return await user_errors(run)
