"""What the tests of every platform adapter share: a recording fake of the platform's
API on loopback, the products they push, and the error mapping every adapter must show.

A `Fake` records every request it receives, checks the platform's credentials on its
data routes, and can be told to fail the next data requests (a 429 with the platform's
wait header, a 5xx, a 4xx). Multipart bodies are read with the standard library's email
parser, independently of the adapters' own multipart code.
"""

import asyncio
import email
import email.policy
import ipaddress
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.base import (
    ConnectorConfig,
    OutgoingProduct,
    PlatformAdapter,
    PriceLevel,
    RemoteProduct,
    StockLevel,
    adapter_for,
)
from connectors.http import PlatformError, PlatformHttp
from pim import outbound
from pim.outbound import OutboundPolicy
from tests.loopback import serve

LOOPBACK = OutboundPolicy(
    allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),), allow_plain_http=True
)

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Received:
    method: str
    path: str
    query: QueryParams
    headers: Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fake:
    """One platform's API: routes added with `route`, credentials checked by `authorized`
    (given the request and its body)."""

    authorized: Callable[[Request, bytes], bool]
    received: list[Received] = field(default_factory=list)
    failures: list[Response] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0  # how many requests were served at once, at the most

    def route(self, path: str, *methods: str, open: bool = False) -> Callable[[Handler], Handler]:
        """Add a route; unless `open` (token endpoints), it answers a queued failure
        instead of its handler, or 401 to bad credentials."""

        def add(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                try:
                    # A turn of the loop, as a real server's work takes: requests sent at
                    # once are then served at once, and `most_in_flight` sees them.
                    await asyncio.sleep(0)
                    body = await request.body()
                    self.received.append(
                        Received(request.method, request.url.path, request.query_params,
                                 request.headers, body)
                    )  # fmt: skip
                    if not open:
                        if self.failures:
                            return self.failures.pop(0)
                        if not self.authorized(request, body):
                            return JSONResponse({"error": "invalid_token"}, status_code=401)
                    return await handler(request)
                finally:
                    self.in_flight -= 1

            self.routes.append(Route(path, endpoint, methods=list(methods or ("GET",))))
            return handler

        return add

    def fail(self, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
        """Answer the next data request with `status` (and the platform's error `body`)."""
        self.failures.append(
            Response(f"failure {status}", status_code=status, headers=headers)
            if body is None
            else JSONResponse(body, status_code=status, headers=headers)
        )

    def to(self, path: str, method: str | None = None) -> list[Received]:
        """What was received on `path` (and `method`), in order."""
        return [
            r for r in self.received if r.path == path and (method is None or r.method == method)
        ]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes)


def recorder() -> tuple[list[Request], Starlette]:
    """A server that answers every path and method, and keeps the requests: where a
    redirect may lead, to see what followed it."""
    seen: list[Request] = []

    async def anything(request: Request) -> Response:
        seen.append(request)
        return JSONResponse({"data": {}, "method": request.method,
                             "length": request.headers.get("content-length")})  # fmt: skip

    routes = [Route("/{path:path}", anything, methods=["GET", "POST", "PUT"])]
    return seen, Starlette(routes=routes)


def bearer(token: str) -> Callable[[Request, bytes], bool]:
    return lambda request, _body: request.headers.get("authorization") == f"Bearer {token}"


@asynccontextmanager
async def running(fake: Fake) -> AsyncIterator[tuple[str, PlatformHttp]]:
    """Serve the fake on loopback; yields its base URL and a guarded PlatformHttp."""
    async with serve(fake.app()) as base, outbound.client() as client:
        yield base, PlatformHttp(client, LOOPBACK)


@asynccontextmanager
async def connected(
    fake: Fake, config: Callable[[str], ConnectorConfig]
) -> AsyncIterator[PlatformAdapter]:
    """The fake `running` and an adapter configured (from its base URL) to reach it."""
    async with running(fake) as (base, http):
        yield adapter_for(config(base), http)


# --- payloads ------------------------------------------------------------------------


def products(count: int, *, linked: Iterable[int] = ()) -> list[OutgoingProduct]:
    """`count` products SKU-000…; those at the `linked` positions carry an external id."""
    linked = set(linked)
    return [
        OutgoingProduct(
            product_id=uuid.uuid4(),
            sku=f"SKU-{i:03}",
            ean=f"{3760000000000 + i}",
            name=f"Produit {i}",
            description=f"Description {i}",
            short_description=f"Court {i}",
            brand="Pixee",
            price=10.0 + i,
            stock=i,
            weight=0.5,
            external_id=f"EXT-{i:03}" if i in linked else None,
        )
        for i in range(count)
    ]


def stock_levels(count: int) -> list[StockLevel]:
    return [StockLevel(uuid.uuid4(), f"SKU-{i:03}", quantity=i * 2) for i in range(count)]


def price_levels(count: int) -> list[PriceLevel]:
    return [PriceLevel(uuid.uuid4(), f"SKU-{i:03}", price=19.9 + i) for i in range(count)]


async def all_pages(adapter: PlatformAdapter) -> list[list[RemoteProduct]]:
    return [page async for page in adapter.pull_products()]


async def assert_refused_for_good(call: Callable[[], Awaitable[Any]]) -> None:
    """`call` fails with the platform's 401, which is permanent: wrong credentials are
    not tried again."""
    with pytest.raises(PlatformError) as refused:
        await call()
    assert (refused.value.status, refused.value.transient) == (401, False)


async def first_page(adapter: PlatformAdapter) -> list[RemoteProduct]:
    async for page in adapter.pull_products():
        return page
    return []


# --- multipart, read and written independently of connectors.multipart -----------------


def multipart_parts(body: bytes, content_type: str) -> list[Message]:
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    return list(message.iter_parts())  # type: ignore[attr-defined]  # EmailMessage under HTTP policy


def part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else str(part.get_payload()).encode()


def multipart_body(parts: list[tuple[dict[str, str], bytes]], boundary: str) -> bytes:
    chunks = []
    for headers, content in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode() + content + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


# --- the error mapping every adapter must show -----------------------------------------


async def check_error_mapping(
    fake: Fake,
    call: Callable[[], Awaitable[Any]],
    *,
    throttled: dict[str, str] | None = None,
    wait: float = 7.0,
) -> None:
    """A 429 (with the platform's `throttled` headers; Retry-After: 7 unless told) is
    transient with the platform's `wait`, a 5xx transient, another 4xx permanent."""
    fake.fail(429, {"Retry-After": "7"} if throttled is None else throttled)
    with pytest.raises(PlatformError) as caught:
        await call()
    assert (caught.value.status, caught.value.transient) == (429, True)
    assert caught.value.retry_after == wait

    fake.fail(503)
    with pytest.raises(PlatformError) as caught:
        await call()
    assert (caught.value.status, caught.value.transient) == (503, True)

    fake.fail(400)
    with pytest.raises(PlatformError) as caught:
        await call()
    assert (caught.value.status, caught.value.transient) == (400, False)
