"""The ASGI application: GraphQL at /graphql, the REST shims under /api/v1."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from jobs.automations import embedded_scheduler
from pim.responses import OrjsonResponse
from pim.runtime import Runtime
from pim.settings import Settings, get_settings
from rest_compat import errors, ext, imports_automations
from rest_compat import imports as imports_api
from schema import build_schema
from schema.context import context_getter


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = runtime or Runtime.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with embedded_scheduler(runtime):
            yield
        await runtime.close()

    app = FastAPI(
        title="Pixee PIM API",
        version="1.0",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.runtime = runtime
    errors.install(app)
    app.middleware("http")(_rate_limit_headers)

    graphql = GraphQLRouter(
        build_schema(settings),
        context_getter=context_getter,
        graphql_ide="graphiql",
        # Only the protocol that gates operations on connection_init (the legacy
        # graphql-ws handler let clients skip authentication: CVE-2026-35523).
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        # File uploads (createImportJob) are off by default against CSRF
        # (CVE-2024-47082): a cross-site form cannot set headers, and every
        # operation here needs an API key header, so a forged upload is refused.
        multipart_uploads_enabled=True,
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(ext.router)
    app.include_router(imports_api.router)
    app.include_router(imports_automations.router)

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, object]:
        return {
            "name": "Pixee PIM API",
            "graphql": "/graphql",
            "rest": ["/api/v1/ext", imports_api.PREFIX],
            "openapi": "/openapi.json",
        }

    return app


async def _rate_limit_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    window = getattr(request.state, "rate_window", None)
    if window is not None:
        response.headers["X-RateLimit-Limit"] = str(window.limit)
        response.headers["X-RateLimit-Remaining"] = str(window.remaining)
        response.headers["X-RateLimit-Reset"] = str(window.reset_at)
        if not window.allowed:
            response.headers["Retry-After"] = str(window.retry_after)
    return response
