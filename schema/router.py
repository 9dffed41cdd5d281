"""The /graphql endpoint: strawberry's FastAPI router with orjson on the wire and
websockets admitted like HTTP requests.

HTTP requests are admitted by the context getter (schema/context.py) before their body
is read. A websocket is admitted on its connection_init (browsers cannot set websocket
headers): a missing or wrong key closes it with 4401, a refused one (rate limit) with
4403, and its key is checked again every few seconds while it is open, so that revoking
a key ends its subscriptions.
"""

import asyncio
import contextlib
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, FormData, StarletteRequestAdapter
from fastapi import Request
from fastapi.responses import HTMLResponse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from pim import docs, json_encoding
from resolvers import keys
from resolvers.admission import admit, presented_key
from resolvers.bodies import decode_json
from resolvers.errors import Unauthenticated
from schema import persisted
from schema.context import Context

# Files one GraphQL request may upload (createImportJob takes one; a few per request).
MAX_UPLOAD_FILES = 10


class KeyCheckedTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, closing the socket whose key is missing, wrong or revoked."""

    key_watch: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except Unauthenticated:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        if self.connection_acknowledged and self.key_watch is None:
            self.key_watch = asyncio.create_task(self._watch_key())

    async def _watch_key(self) -> None:
        runtime = self.context.runtime
        while True:
            await asyncio.sleep(runtime.settings.ws_key_check_seconds)
            try:
                # Within keys.CALLER_TTL_SECONDS of a revocation made elsewhere; at once
                # for one made in this process.
                await keys.caller_for(runtime.db, self.context.socket_key)
            except Unauthenticated:
                break
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await self.websocket.close(code=4401, reason="Unauthorized")

    async def shutdown(self) -> None:
        if self.key_watch is not None:
            self.key_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.key_watch
        await super().shutdown()


class BoundedFormAdapter(StarletteRequestAdapter):
    """Multipart requests hold `operations`, `map` and the files (one per
    createImportJob): Starlette's defaults (1,000 fields of up to 1 MB each, kept in
    memory) would let an upload's 512 MB budget fill memory with fields."""

    async def get_form_data(self) -> FormData:
        form = await self._request.form(max_files=MAX_UPLOAD_FILES, max_fields=2)
        return FormData(files=form, form=form)


class PimGraphQLRouter(GraphQLRouter[Context, None]):
    graphql_transport_ws_handler_class = KeyCheckedTransportWS
    request_adapter_class = BoundedFormAdapter

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET carrying only a persisted query's hash is an operation, not a browser.
        return "extensions" not in request.query_params and super().should_render_graphql_ide(
            request
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        resolved = await persisted.resolve(context, request_data)
        if isinstance(resolved, ExecutionResult):
            return resolved
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value, resolved.data
        )
        if resolved.to_store is not None and not isinstance(result, PreExecutionError):
            await persisted.store(context, resolved.to_store)
        return result

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        # Strawberry's page loads GraphiQL and React from a CDN; ours, from /static.
        return HTMLResponse(docs.graphiql_page())

    def encode_json(self, data: object) -> str:
        # Strawberry encodes with the json module: on a page of 50 products, 230 µs
        # against orjson's 21 µs. Text, as websocket messages must be.
        return json_encoding.dumps(data).decode()

    # The json module recurses into JSON nested 100,000 deep (RecursionError, a 500);
    # orjson stops at its depth limit.
    def decode_json(self, data: str | bytes) -> object:
        # Websocket messages: a JSONDecodeError closes the socket with 4400.
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> object:
        # Request bodies: malformed or too deep is a GraphQL error (400), not plain text.
        return decode_json(data)

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params
        headers = {str(k).lower(): v for k, v in params.items()} if isinstance(params, dict) else {}
        plain = presented_key(headers)
        runtime = context.runtime
        admission = await admit(runtime.db, runtime.limiter, plain)
        if isinstance(admission.refusal, Unauthenticated):
            raise admission.refusal
        if admission.refusal is not None:
            raise ConnectionRejectionError()
        context.presented, context.socket_key = admission.caller, plain
        return await super().on_ws_connect(context)
