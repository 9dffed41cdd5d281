"""The exactly-once matrix every adapter goes through: 250 products pushed chunk by
chunk as the sync job pushes them (`jobs.sync.push_products_once`: the connector's
per-request retries, then reconciliation of what a failed call may have created before
anything is sent again), through the faults of tests.connectors.fakes.faults.

A platform's test module serves its strict fake with `served` (behind its `Faults`, an
adapter built as the sync job builds it), arms one fault with `armed(fault, path)`
(`path`: a part of the path its product writes go to), pushes with `push_all` and
asserts on its fake's records. The checks every platform shares are here once: a
write redirected on its own host is followed (`push_redirected_on_host`), one
redirected to another host is refused before anything reaches it
(`push_redirected_elsewhere`), an expiring token is renewed (`push_with_expiring_tokens`).
What the fake must hold afterwards (each created once, or upserts bounded) is the
platform's, or its family's: `CREATED_ONCE` below for the platforms that count creates,
tests.connectors.upsert_matrix for those whose writes are upserts.
"""

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial

import httpx

from connectors.base import (
    ConnectorConfig,
    ItemOutcome,
    OutgoingProduct,
    PlatformAdapter,
    adapter_for,
)
from connectors.http import PlatformHttp, RetryPolicy, TokenBucket
from jobs.sync import push_products_once
from pim import outbound
from pim.settings import Settings
from tests.connectors.fakes.faults import ASGIApp, Expiry, Faults, Rule
from tests.connectors.fakes.sessions import Sessions
from tests.connectors.helpers import LOOPBACK, recorder
from tests.loopback import serve

COUNT = 250
# No waits between retries: the faults answer at once and the matrix stays fast.
SETTINGS = Settings(connector_retry_base_delay=0.0, connector_retry_max_delay=0.0)
# Past the client timeout the matrix's adapters are built with (outbound.client(timeout=1.0)).
HANG_SECONDS = 1.5
REFUSED = "redirection vers un autre hôte refusée (127.0.0.2)"

FAULTS: dict[str, Callable[[Faults, str], Rule]] = {
    "502 after commit": lambda faults, path: faults.fail_after_commit(path, at=2),
    "connection dropped after commit": lambda faults, path: faults.drop_after_commit(path, at=2),
    "timeout after commit": lambda faults, path: faults.hang_after_commit(path, at=2),
    "throttled mid-push": lambda faults, path: faults.throttle(path, method="POST", at=2, times=2),
}

# The adapter that reaches a fake at its base URL through the matrix's PlatformHttp.
Reach = Callable[[str, PlatformHttp], PlatformAdapter]
# What serves the fake: the fake itself and the fake behind its faults.
Front = Callable[[ASGIApp, ASGIApp], ASGIApp]


def by_config(config: Callable[[str], ConnectorConfig]) -> Reach:
    """The registered adapter for the connector `config` describes at a base URL."""
    return lambda base, http: adapter_for(config(base), http)


def outgoing(count: int = COUNT) -> list[OutgoingProduct]:
    """`count` new products, with what every platform requires (SKU, EAN, name, price)."""
    return [
        OutgoingProduct(uuid.uuid4(), f"SKU-{i:04}", f"{3760000000000 + i}", f"Produit {i}",
                        description=f"Description {i}", brand="Pixee", price=10.0 + i, stock=i,
                        weight=0.5)
        for i in range(count)
    ]  # fmt: skip


def armed(fault: str, path: str, *, method: str | None = None) -> Faults:
    """Faults with the matrix's `fault` armed on the writes to `path` (POSTs, or
    `method`), hanging past the adapters' timeout."""
    faults = Faults(hang_seconds=HANG_SECONDS)
    rule = FAULTS[fault](faults, path)
    if method is not None:
        rule.method = method
    return faults


def matrix_http(client: httpx.AsyncClient, *, unpaced: bool = False) -> PlatformHttp:
    """The connector's requests as the sync job makes them, retried per SETTINGS;
    `unpaced` where the platform's real pace would make a case last a minute (what is
    checked is what exists on the platform, not the pace)."""
    http = PlatformHttp(client, LOOPBACK, retry=RetryPolicy.from_settings(SETTINGS))
    if unpaced:
        http.bucket = TokenBucket(rate=10_000.0, burst=10_000.0)
    return http


@asynccontextmanager
async def served(
    app: ASGIApp, reach: Reach, faults: Faults, *, unpaced: bool = False,
    front: Front | None = None,
) -> AsyncIterator[tuple[PlatformAdapter, str]]:  # fmt: skip
    """`app` on loopback behind `faults` (or as `front` serves them both), and an adapter
    reaching it with a client timeout shorter than HANG_SECONDS; with its base URL."""
    faulty = faults.wrap(app)
    async with serve(front(app, faulty) if front else faulty) as base, \
            outbound.client(timeout=1.0) as client:  # fmt: skip
        yield reach(base, matrix_http(client, unpaced=unpaced)), base


async def push_chunks(
    adapter: PlatformAdapter, products: Sequence[OutgoingProduct], *, uncertain: bool = False
) -> list[ItemOutcome]:
    """Push `products` in the adapter's chunks as the sync job does, each chunk carrying
    the links recorded so far; answers every product's outcome, in order."""
    links: dict[uuid.UUID, str] = {}
    outcomes: list[ItemOutcome] = []

    async def remember(ids: dict[uuid.UUID, str]) -> None:
        links.update(ids)

    for start in range(0, len(products), adapter.chunk_size):
        chunk = [replace(p, external_id=links.get(p.product_id))
                 for p in products[start : start + adapter.chunk_size]]  # fmt: skip
        done = await push_products_once(SETTINGS, adapter, chunk, remember, uncertain=uncertain)
        links.update({o.product_id: o.external_id for o in done if o.external_id})
        outcomes += done
    return outcomes


async def push_all(
    adapter: PlatformAdapter, products: Sequence[OutgoingProduct], *, uncertain: bool = False
) -> dict[uuid.UUID, str]:
    """`push_chunks`, asserting that every product ends ok; answers their external ids."""
    outcomes = await push_chunks(adapter, products, uncertain=uncertain)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    return {o.product_id: o.external_id for o in outcomes if o.external_id}


async def push_through_fault(
    app: ASGIApp, reach: Reach, fault: str, path: str, products: Sequence[OutgoingProduct],
    *, method: str | None = None, unpaced: bool = False, front: Front | None = None,
) -> tuple[dict[uuid.UUID, str], Rule]:  # fmt: skip
    """`push_all` through the matrix's `fault`, armed on the writes to `path`; it must
    fire. Answers the links and the fault's rule (how often it fired, and how)."""
    faults = armed(fault, path, method=method)
    async with served(app, reach, faults, unpaced=unpaced, front=front) as (adapter, _base):
        links = await push_all(adapter, products)
    assert faults.rules[0].fired >= 1  # the fault did happen
    return links, faults.rules[0]


async def push_with_expiring_tokens(
    app: ASGIApp, reach: Reach, products: Sequence[OutgoingProduct], *, header: str,
    calls: int, login: str, unpaced: bool = False, front: Front | None = None,
) -> tuple[dict[uuid.UUID, str], Expiry]:  # fmt: skip
    """`push_all` while the token in `header` expires every `calls` calls (a new one
    from the path containing `login`); it must have been refused at least once."""
    faults = Faults()
    expiry = faults.expire_tokens(header, calls=calls, login=login)
    async with served(app, reach, faults, unpaced=unpaced, front=front) as (adapter, _base):
        links = await push_all(adapter, products)
    assert expiry.refusals >= 1
    return links, expiry


async def push_redirected_on_host(
    app: ASGIApp, reach: Reach, path: str, products: Sequence[OutgoingProduct], *,
    method: str = "POST", under: str = "", once: bool = True, unpaced: bool = False,
    front: Front | None = None,
) -> tuple[dict[uuid.UUID, str], Rule]:  # fmt: skip
    """`push_all` while the writes to `path` are redirected (307) on the fake's own host,
    to `under` + the same path (a gateway moving the request): the second one only and
    followed once, or every one (`once=False`). Answers the links and the redirect."""
    faults = Faults()
    async with served(app, reach, faults, unpaced=unpaced, front=front) as (adapter, base):
        if once:
            faults.redirect(path, base + under, status=307, method=method, at=2, times=1)
        else:
            faults.redirect(path, base + under, status=307, method=method)
        links = await push_all(adapter, products)
    if once:
        assert faults.rules[0].fired == 1
    return links, faults.rules[0]


async def push_redirected_elsewhere(
    app: ASGIApp, reach: Reach, path: str, products: Sequence[OutgoingProduct], *,
    elsewhere: ASGIApp | None = None, method: str = "POST", unpaced: bool = False,
    front: Front | None = None,
) -> list[ItemOutcome]:  # fmt: skip
    """One call of the sync job while every write to `path` is redirected (307) to
    `elsewhere` (a recorder by default) on another host: each product fails with the
    refused redirect, not transient, nothing is linked, and nothing reached the other
    host (neither a credential header, whatever its name, nor a product)."""
    seen, record = recorder()
    remembered: dict[uuid.UUID, str] = {}

    async def remember(ids: dict[uuid.UUID, str]) -> None:
        remembered.update(ids)

    faults = Faults()
    async with serve(elsewhere or record, host="127.0.0.2") as other, \
            served(app, reach, faults, unpaced=unpaced, front=front) as (adapter, _base):  # fmt: skip
        faults.redirect(path, other, status=307, method=method)
        outcomes = await push_products_once(SETTINGS, adapter, products, remember)
    assert [(o.ok, o.transient) for o in outcomes] == [(False, False)] * len(products)
    assert all(REFUSED in (o.error or "") for o in outcomes), outcomes[0].error
    assert seen == [] and remembered == {}
    return outcomes


def assert_sent_again(fault: str, sends: Counter[str], chunk: int = 100) -> None:
    """What a platform that upserts by our key received twice through `fault` (`sends`:
    how many times each key arrived): the chunk whose answer was lost, sent again
    whole; nothing for throttling, which refuses before processing."""
    again = [key for key, count in sends.items() if count > 1]
    assert len(again) == (0 if fault == "throttled mid-push" else chunk), again[:5]


@dataclass
class Platform:
    """A platform that counts its creates (SFCC, SAP Commerce, Sylius, WiziShop), as
    `CREATED_ONCE` sees it: its app, its sessions (creates and logins), the connector
    for a base URL, a part of the path of its product writes and of its login, the
    external ids of its (complete) items, and after how many calls its token is made to
    expire (a few times in a push of 250)."""

    app: ASGIApp
    sessions: Sessions
    config: Callable[[str], ConnectorConfig]
    writes: str
    login: str
    records: Callable[[], set[str]]
    token_calls: int


def assert_each_once(
    platform: Platform, products: Sequence[OutgoingProduct], links: dict[uuid.UUID, str]
) -> None:
    assert sorted(platform.sessions.creates) == sorted(p.sku for p in products)  # once each
    assert set(links) == {p.product_id for p in products}
    assert len(set(links.values())) == len(products)
    assert set(links.values()) == platform.records()  # every item linked, and complete


async def assert_exactly_once_through(platform: Platform, fault: str) -> None:
    products = outgoing()
    links, _rule = await push_through_fault(platform.app, by_config(platform.config), fault,
                                            platform.writes, products)  # fmt: skip
    assert_each_once(platform, products, links)


async def assert_token_renewed_once_per_expiry(platform: Platform) -> None:
    products = outgoing()
    links, expiry = await push_with_expiring_tokens(
        platform.app, by_config(platform.config), products, header="authorization",
        calls=platform.token_calls, login=platform.login,
    )  # fmt: skip
    assert platform.sessions.logins == 1 + expiry.refusals  # one renewal per refusal
    assert_each_once(platform, products, links)


async def assert_redirect_followed_on_the_same_host(platform: Platform) -> None:
    products = outgoing()
    links, _rule = await push_redirected_on_host(platform.app, by_config(platform.config),
                                                 platform.writes, products)  # fmt: skip
    assert_each_once(platform, products, links)


async def assert_redirect_to_another_host_refused(platform: Platform) -> None:
    await push_redirected_elsewhere(platform.app, by_config(platform.config), platform.writes,
                                    outgoing(20))  # fmt: skip
    assert platform.sessions.creates == []


TOKEN_EXPIRY = "token expired every few calls"
# Every check of a platform counting its creates, by name: each fault of FAULTS, the
# token's expiry, the redirects.
CREATED_ONCE: dict[str, Callable[[Platform], Awaitable[None]]] = {
    **{fault: partial(assert_exactly_once_through, fault=fault) for fault in FAULTS},
    TOKEN_EXPIRY: assert_token_renewed_once_per_expiry,
    "write redirected on the same host": assert_redirect_followed_on_the_same_host,
    "write redirected to another host": assert_redirect_to_another_host_refused,
}
