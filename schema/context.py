"""The per-request GraphQL context: who calls, the runtime, and this request's DataLoaders."""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import strawberry
from aiodataloader import DataLoader
from fastapi import Request, WebSocket
from graphql import GraphQLError
from strawberry.fastapi import BaseContext

from pim.auth import Caller
from pim.db import DbSession
from pim.ratelimit import RateWindow
from pim.runtime import Runtime
from resolvers import keys, loaders
from resolvers.errors import (
    DomainError,
    FieldError,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from rest_compat.common import presented_key

BatchFn = Callable[[DbSession, Caller, Sequence[Any]], Awaitable[list[Any]]]


def graphql_error(exc: DomainError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": exc.code.upper(), "field": exc.field})


@dataclass
class Context(BaseContext):
    runtime: Runtime = field(default=None)  # type: ignore[assignment]
    presented: Caller | None = None
    auth_error: DomainError | None = None

    def caller(self) -> Caller:
        """The authenticated caller, or a GraphQL error: every data field needs a key."""
        if self.auth_error is not None:
            raise graphql_error(self.auth_error)
        if self.presented is None:
            raise graphql_error(Unauthenticated())
        return self.presented

    def _loader(self, batch: BatchFn) -> DataLoader:
        caller = self.caller()

        async def load(keys_: list[Any]) -> list[Any]:
            # Each batch has its own session: loaders of one request run concurrently.
            async with self.runtime.db.read() as session:
                return await batch(session, caller, keys_)

        return DataLoader(load)

    @cached_property
    def brands(self) -> DataLoader:
        return self._loader(loaders.brands)

    @cached_property
    def categories(self) -> DataLoader:
        return self._loader(loaders.categories)

    @cached_property
    def suppliers(self) -> DataLoader:
        return self._loader(loaders.suppliers)

    @cached_property
    def stock(self) -> DataLoader:
        return self._loader(loaders.stock_quantities)

    @cached_property
    def supplier_stocks(self) -> DataLoader:
        return self._loader(loaders.supplier_stocks)

    @cached_property
    def channel_prices(self) -> DataLoader:
        return self._loader(loaders.channel_prices)


Info = strawberry.Info[Context, None]


async def identify(
    runtime: Runtime, plain: str | None
) -> tuple[Caller | None, DomainError | None, RateWindow | None]:
    """Authenticate and rate-limit a presented key; no key at all is allowed (GraphiQL, docs)."""
    if plain is None:
        return None, None, None
    try:
        caller = await keys.caller_for(runtime.db, plain)
    except DomainError as exc:
        return None, exc, None
    window = await runtime.limiter.hit(caller.key_id, caller.rate_limit_per_minute)
    if not window.allowed:
        limited = RateLimited(
            message="Trop de requêtes : limite de la clé atteinte, réessayez plus tard.",
            retry_after=window.retry_after,
        )
        return caller, limited, window
    return caller, None, window


async def context_getter(request: Request = None, websocket: WebSocket = None) -> Context:  # type: ignore[assignment]
    if request is None:
        # Browsers cannot set websocket headers: subscriptions authenticate from the
        # connection_init payload instead.
        return Context(runtime=websocket.app.state.runtime)
    runtime: Runtime = request.app.state.runtime
    caller, error, window = await identify(runtime, presented_key(request.headers))
    request.state.rate_window = window
    return Context(runtime=runtime, presented=caller, auth_error=error)


async def subscription_caller(info: "Info") -> Caller:
    """The caller of a websocket subscription, from its connection_init payload.

    Browsers cannot set websocket headers, so clients (GraphiQL's Headers tab too)
    send `{"X-API-Key": ...}` or `{"Authorization": "Bearer ..."}` in connection_init.
    """
    context = info.context
    if context.presented is None and context.auth_error is None:
        params = getattr(context, "connection_params", None) or {}
        headers = {str(k).lower(): v for k, v in params.items()} if isinstance(params, dict) else {}
        context.presented, context.auth_error, _ = await identify(
            context.runtime, presented_key(headers)
        )
    return context.caller()


def parse_id(value: strawberry.ID | str, field_name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise ValidationFailed.of([FieldError(field_name, "UUID invalide")]) from exc
