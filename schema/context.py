"""The per-request GraphQL context: who calls, the runtime, and this request's DataLoaders."""

import uuid
from dataclasses import dataclass, field
from typing import Any

import strawberry
from fastapi import Request, WebSocket
from graphql import GraphQLError
from strawberry.fastapi import BaseContext

from pim.auth import Caller
from pim.request_body import budget_of
from pim.runtime import Runtime
from resolvers.admission import admit, presented_key
from resolvers.errors import DomainError, FieldError, Unauthenticated, ValidationFailed
from resolvers.permissions import Operation


def graphql_error(exc: DomainError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": exc.code.upper(), "field": exc.field})


@dataclass
class Context(BaseContext):
    runtime: Runtime = field(default=None)  # type: ignore[assignment]
    presented: Caller | None = None
    # A websocket's key, checked again while its subscriptions run.
    socket_key: str | None = None
    # This request's DataLoaders by class (see schema/dataloaders.py).
    loaders: dict[type, Any] = field(default_factory=dict)

    def caller(self) -> Caller:
        """The authenticated caller, or a GraphQL error: every data field needs a key."""
        if self.presented is None:
            raise graphql_error(Unauthenticated())
        return self.presented


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
