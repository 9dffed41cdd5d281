"""The ASGI application: GraphQL at /graphql, the REST shims under /api/v1."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from jobs import housekeeping
from jobs import webhooks as webhook_jobs
from jobs.automations import embedded_scheduler
from pim import docs, gc_tuning, logs, tracing
from pim.request_body import BodyLimits
from pim.request_telemetry import RequestTelemetry
from pim.responses import OrjsonResponse
from pim.runtime import Runtime
from pim.settings import Settings, get_settings
from rest_compat import (
    audit,
    connectors,
    errors,
    ext,
    imports_automations,
    keys,
    magento,
    operations,
    products,
    webhooks,
    windev,
    woocommerce,
)
from rest_compat import imports as imports_api
from schema import build_schema
from schema.context import context_getter
from schema.router import PimGraphQLRouter
from service.runtime import build_runtime


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.resolved_log_format, settings.log_level)
    tracing.setup("pim-api")  # before the runtime: its engine gets instrumented
    runtime = runtime or build_runtime(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gc_tuning.settle()
        # The embedded default has no arq cron: its webhook safety net is a task here.
        poller = (
            None
            if settings.redis_url
            else asyncio.create_task(webhook_jobs.every(runtime, settings.webhook_poll_seconds))
        )
        async with embedded_scheduler(runtime), housekeeping.embedded(runtime):
            yield
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await runtime.close()

    app = FastAPI(
        title="Pixee PIM API",
        version="1.0",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        # Starlette's redirect to the path with(out) a trailing slash writes the Host
        # header into Location (a forged Host makes it point elsewhere): a route is only
        # found at the address the spec gives, else the surface's 404.
        redirect_slashes=False,
        docs_url=None,  # served by pim.docs, without a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    errors.install(app)
    docs.install(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(BodyLimits, settings=settings)
    # Added last, so outermost: every response, a refusal by other middleware too, gets it.
    app.add_middleware(
        RequestTelemetry, on_error=errors.internal_error, log_requests=settings.request_log
    )
    tracing.instrument_app(app)

    graphql = PimGraphQLRouter(
        build_schema(settings),
        # The path on the route itself (not an include prefix), so that the route template
        # in metrics and logs reads "/graphql".
        path="/graphql",
        context_getter=context_getter,
        graphql_ide="graphiql",
        # Only the protocol that gates operations on connection_init (the legacy
        # graphql-ws handler let clients skip authentication: CVE-2026-35523).
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
        # File uploads (createImportJob) are off by default against CSRF
        # (CVE-2024-47082): a cross-site form cannot set headers, and every
        # operation here needs an API key header, so a forged upload is refused.
        multipart_uploads_enabled=True,
    )
    app.include_router(graphql)
    app.include_router(ext.router)
    app.include_router(windev.router)
    app.include_router(products.router)
    app.include_router(imports_api.router)
    app.include_router(imports_automations.router)
    app.include_router(connectors.router)
    app.include_router(woocommerce.router)
    app.include_router(magento.router)
    app.include_router(webhooks.router)
    app.include_router(operations.router)
    app.include_router(keys.router)
    app.include_router(audit.router)

    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, object]:
        return {
            "name": "Pixee PIM API",
            "graphql": "/graphql",
            "rest": [
                "/api/v1/ext",
                "/api/v1/windev",
                "/api/v1/products",
                imports_api.PREFIX,
                "/api/v1/connectors/",
                "/api/v1/woocommerce/",
                "/api/v1/magento/",
                "/api/v1/webhooks",
                keys.PREFIX,
                audit.PREFIX,
            ],
            "openapi": "/openapi.json",
            "docs": "/docs",
        }

    return app


class RateLimitHeaders:
    """Adds the caller's rate-limit window to every response (a plain ASGI middleware:
    Starlette's BaseHTTPMiddleware costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                window = scope.get("state", {}).get("rate_window")
                if window is not None:
                    headers = MutableHeaders(scope=message)
                    headers["X-RateLimit-Limit"] = str(window.limit)
                    headers["X-RateLimit-Remaining"] = str(window.remaining)
                    headers["X-RateLimit-Reset"] = str(window.reset_at)
                    if not window.allowed:
                        headers["Retry-After"] = str(window.retry_after)
            await send(message)

        await self.app(scope, receive, send_with_headers)
