"""What the fakes of Squarespace, Google Merchant Center, Mirakl, Medusa, Shopware,
Saleor and Amazon share: recording requests, checking auth, failing on demand, and the
checks every adapter must pass on rate limits and errors.
"""

import ipaddress
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from connectors.base import ConnectorConfig, OutgoingProduct, PlatformAdapter, adapter_for
from connectors.http import PlatformError, PlatformHttp
from pim import outbound
from pim.outbound import OutboundPolicy
from tests.loopback import serve

LOOPBACK = OutboundPolicy(
    allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),), allow_plain_http=True
)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fake:
    """A platform fake: `authorized` decides whether a request's credentials are good
    (paths in `open_paths`, such as token endpoints, skip it); `fail_next` holds
    answers to give, in order, instead of the real ones."""

    authorized: Callable[[Request], bool]
    open_paths: frozenset[str] = frozenset()
    received: list[Received] = field(default_factory=list)
    fail_next: list[Response] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0  # how many requests were served at once, at the most

    def calls(self, method: str, path: str) -> list[Received]:
        return [r for r in self.received if r.method == method and r.path == path]

    def app(self, routes: list[BaseRoute]) -> Starlette:
        fake = self

        class Gate(BaseHTTPMiddleware):
            async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:  # fmt: skip
                body = await request.body()
                fake.received.append(Received(
                    request.method, request.url.path, dict(request.query_params),
                    dict(request.headers), body,
                ))  # fmt: skip
                if fake.fail_next:
                    return fake.fail_next.pop(0)
                if request.url.path not in fake.open_paths and not fake.authorized(request):
                    return JSONResponse({"message": "Unauthorized"}, status_code=401)
                fake.in_flight += 1
                fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                try:
                    return await call_next(request)
                finally:
                    fake.in_flight -= 1

        app = Starlette(routes=routes)
        app.add_middleware(Gate)
        return app


def bearer(token: str) -> Callable[[Request], bool]:
    return lambda request: request.headers.get("authorization") == f"Bearer {token}"


@asynccontextmanager
async def connected(
    fake: Fake, routes: list[BaseRoute], config: Callable[[str], ConnectorConfig]
) -> AsyncIterator[PlatformAdapter]:
    """The fake served on loopback and an adapter configured (from its base URL) to reach it."""
    async with serve(fake.app(routes)) as base, outbound.client() as client:
        yield adapter_for(config(base), PlatformHttp(client, LOOPBACK))


def products(count: int, *, linked: bool = False) -> list[OutgoingProduct]:
    return [
        OutgoingProduct(
            product_id=uuid.UUID(int=i + 1), sku=f"SKU-{i}", ean=f"{3000000000000 + i}",
            name=f"Produit {i}", description=f"Description {i}", brand="Pixee",
            price=10.0 + i, stock=i, weight=0.5,
            external_id=f"ext-{i}" if linked else None,
        )
        for i in range(count)
    ]  # fmt: skip


async def check_error_mapping(
    fake: Fake,
    call: Callable[[], Awaitable[object]],
    throttled: Response,
    expected_wait: float,
) -> None:
    """The platform's throttling answer and a 5xx are transient (with the wait it asked
    for), another 4xx permanent."""
    fake.fail_next.append(throttled)
    with pytest.raises(PlatformError) as caught:
        await call()
    assert (caught.value.transient, caught.value.retry_after) == (True, expected_wait)

    fake.fail_next.append(JSONResponse({"message": "upstream down"}, status_code=503))
    with pytest.raises(PlatformError) as caught:
        await call()
    assert caught.value.transient and caught.value.status == 503

    fake.fail_next.append(JSONResponse({"message": "forbidden"}, status_code=403))
    with pytest.raises(PlatformError) as caught:
        await call()
    assert not caught.value.transient and caught.value.status == 403
