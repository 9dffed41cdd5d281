"""The exactly-once checks of platforms reached with a session or OAuth token (SFCC,
SAP Commerce, Sylius, WiziShop), run on a platform's strict fake behind
tests.connectors.fakes.faults: 250 products through each fault of FAULTS; through a
token that expires every N calls (renewed once per refusal, and the push goes on);
through a redirect of the write path, followed on the same host and refused to
another one, which receives nothing (no credential header, no product)."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.base import ConnectorConfig, OutgoingProduct, PlatformAdapter, adapter_for
from connectors.http import PlatformHttp, RetryPolicy
from jobs.sync import push_products_once
from pim import outbound
from tests.connectors.exactly_once import FAULTS, HANG_SECONDS, SETTINGS, outgoing, push_all
from tests.connectors.fakes.faults import Faults
from tests.connectors.fakes.sessions import Sessions
from tests.connectors.helpers import LOOPBACK
from tests.loopback import serve


@dataclass
class Platform:
    """A platform's fake as the checks see it: its app, its sessions (creates and
    logins), the connector for a base URL, a part of the path of its product writes and
    of its login, the external ids of its (complete) items, and after how many calls
    its token is made to expire (a few times in a push of 250)."""

    app: Starlette
    sessions: Sessions
    config: Callable[[str], ConnectorConfig]
    writes: str
    login: str
    records: Callable[[], set[str]]
    token_calls: int


@asynccontextmanager
async def connected(platform: Platform, faults: Faults) -> AsyncIterator[tuple[PlatformAdapter, str]]:  # fmt: skip
    """The platform served behind `faults`, and an adapter built as the sync job builds
    it (retries from SETTINGS, a timeout shorter than HANG_SECONDS); with its base URL."""
    async with serve(faults.wrap(platform.app)) as base, outbound.client(timeout=1.0) as client:
        http = PlatformHttp(client, LOOPBACK, retry=RetryPolicy.from_settings(SETTINGS))
        yield adapter_for(platform.config(base), http), base


def assert_each_once(
    platform: Platform, products: Sequence[OutgoingProduct], links: dict[uuid.UUID, str]
) -> None:
    assert sorted(platform.sessions.creates) == sorted(p.sku for p in products)  # once each
    assert set(links) == {p.product_id for p in products}
    assert len(set(links.values())) == len(products)
    assert set(links.values()) == platform.records()  # every item linked, and complete


async def assert_exactly_once_through(platform: Platform, fault: str) -> None:
    faults, products = Faults(hang_seconds=HANG_SECONDS), outgoing()
    FAULTS[fault](faults, platform.writes)
    async with connected(platform, faults) as (adapter, _base):
        links = await push_all(adapter, products)
    assert faults.rules[0].fired >= 1
    assert_each_once(platform, products, links)


async def assert_token_renewed_once_per_expiry(platform: Platform) -> None:
    faults, products = Faults(), outgoing()
    expiry = faults.expire_tokens("authorization", calls=platform.token_calls,
                                  login=platform.login)  # fmt: skip
    async with connected(platform, faults) as (adapter, _base):
        links = await push_all(adapter, products)
    assert expiry.refusals >= 1
    assert platform.sessions.logins == 1 + expiry.refusals  # one renewal per refusal
    assert_each_once(platform, products, links)


async def assert_redirect_followed_on_the_same_host(platform: Platform) -> None:
    faults, products = Faults(), outgoing()
    async with connected(platform, faults) as (adapter, base):
        same_host = faults.redirect(platform.writes, base, status=307, method="POST", at=2,
                                    times=1)  # fmt: skip
        links = await push_all(adapter, products)
    assert same_host.fired == 1
    assert_each_once(platform, products, links)


async def assert_redirect_to_another_host_refused(platform: Platform) -> None:
    seen: list[Request] = []

    async def record(request: Request) -> Response:
        seen.append(request)
        return Response(status_code=201)

    elsewhere = Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST", "PUT"])])
    faults, products = Faults(), outgoing(20)

    async def remember(_ids: dict[uuid.UUID, str]) -> None:
        return None

    async with serve(elsewhere, host="127.0.0.2") as other, \
            connected(platform, faults) as (adapter, _base):  # fmt: skip
        faults.redirect(platform.writes, other, status=307, method="POST")
        outcomes = await push_products_once(SETTINGS, adapter, products, remember)
    refusal = "redirection vers un autre hôte refusée (127.0.0.2)"
    assert all(not o.ok and refusal in (o.error or "") for o in outcomes), outcomes[:2]
    assert seen == []  # neither the credentials nor the products reached the other host
    assert platform.sessions.creates == []


TOKEN_EXPIRY = "token expired every few calls"
# Every check by name: each fault of FAULTS, the token's expiry, the redirects.
CHECKS: dict[str, Callable[[Platform], Awaitable[None]]] = {
    **{fault: partial(assert_exactly_once_through, fault=fault) for fault in FAULTS},
    TOKEN_EXPIRY: assert_token_renewed_once_per_expiry,
    "write redirected on the same host": assert_redirect_followed_on_the_same_host,
    "write redirected to another host": assert_redirect_to_another_host_refused,
}
