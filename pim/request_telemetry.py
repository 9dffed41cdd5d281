"""Per HTTP request: its id (X-Request-ID), its metrics and its one log line.

A plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task and a stream per
request). It is the outermost of the app's own middleware, so even a refusal made by
another middleware carries the request id.
"""

import logging
import time
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pim import incidents, logs, metrics

log = logging.getLogger("pim.request")

UNMATCHED = "unmatched"  # one label for every unknown path: scanners must not add series
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes come every few seconds: counted, but logged only when they fail.
QUIET_PREFIXES = ("/health/", "/metrics")

# The response to an error nothing else handled, given the path and the error id.
ErrorResponder = Callable[[str, str], Response]


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestTelemetry:
    def __init__(self, app: ASGIApp, *, on_error: ErrorResponder, log_requests: bool) -> None:
        self.app = app
        self.on_error = on_error
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = logs.request_id_from(Headers(scope=scope).get("x-request-id"))
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        with logs.scope(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                # Logged with the reference the client is shown (the request id), then
                # answered without internals; re-raised only if the response had begun.
                reference = incidents.record(exc, f"{scope['method']} {scope['path']}")
                if response_started:
                    raise
                await self.on_error(scope["path"], reference)(scope, receive, send_with_id)
            finally:
                self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        metrics.observe_request(route, method, status, seconds)
        if not self.log_requests:
            return
        quiet = status < 400 and scope["path"].startswith(QUIET_PREFIXES)
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %d",
            method,
            route,
            status,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
