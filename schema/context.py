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
from pim.request_body import budget_of
from pim.runtime import Runtime
from resolvers import loaders
from resolvers.admission import admit, presented_key
from resolvers.errors import DomainError, FieldError, Unauthenticated, ValidationFailed
from resolvers.permissions import Operation

BatchFn = Callable[[DbSession, Caller, Sequence[Any]], Awaitable[list[Any]]]


def graphql_error(exc: DomainError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": exc.code.upper(), "field": exc.field})


@dataclass
class Context(BaseContext):
    runtime: Runtime = field(default=None)  # type: ignore[assignment]
    presented: Caller | None = None
    # A websocket's key, checked again while its subscriptions run.
    socket_key: str | None = None

    def caller(self) -> Caller:
        """The authenticated caller, or a GraphQL error: every data field needs a key."""
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


# What an anonymous request may send: enough for GraphiQL's introspection query (about
# 2 KB), which works without a key; data fields all need one.
ANONYMOUS_BODY_BYTES = 32 * 1024


async def context_getter(request: Request = None, websocket: WebSocket = None) -> Context:  # type: ignore[assignment]
    """Admits an HTTP request from its headers, before strawberry reads its body: a wrong
    key, an exhausted rate limit or an upload without the imports scope is refused here."""
    if request is None:
        # Browsers cannot set websocket headers: sockets are admitted on connection_init.
        return Context(runtime=websocket.app.state.runtime)
    runtime: Runtime = request.app.state.runtime
    budget = budget_of(request.scope)
    # Multipart requests carry files, and files here are import uploads.
    uploading = request.headers.get("content-type", "").startswith("multipart/")
    plain = presented_key(request.headers)
    if plain is None and not uploading:
        budget.allow(ANONYMOUS_BODY_BYTES, overflow=Unauthenticated())
        return Context(runtime=runtime)
    admission = await admit(
        runtime.db, runtime.limiter, plain, Operation.IMPORTS_WRITE if uploading else None
    )
    request.state.rate_window = admission.window
    caller = admission.admitted()
    if uploading:
        budget.allow(runtime.settings.max_upload_bytes)
    return Context(runtime=runtime, presented=caller)


async def subscription_caller(info: "Info") -> Caller:
    """The caller of a websocket subscription, admitted on connection_init."""
    return info.context.caller()


def parse_id(value: strawberry.ID | str, field_name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise ValidationFailed.of([FieldError(field_name, "UUID invalide")]) from exc
