"""The exactly-once matrix of tests.connectors.exactly_once for the platforms whose
writes are upserts by a key the push chooses (Amazon listings by seller SKU, Google
product inputs by language, feed label and offer id, Shopware products by our UUID),
plus what their tokens, redirects and updates must not break: an expired access
token is renewed once and the push goes on; a stock update whose answer was lost is
sent again at once, alone; a same-origin 307 of the write path is followed;
a redirect to another host is refused before any credential or product reaches it.

Each platform's test module describes its strict fake with an `UpsertPlatform` and
runs every check of CHECKS in one parametrized test; the fakes keep an `Upserts`
(tests.connectors.fakes.upserts). What differs from the platforms counting their
creates (exactly_once.CREATED_ONCE) is what the fake must hold afterwards: a write
sent again is harmless, within bounds.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from connectors.base import ConnectorConfig, OutgoingProduct, PlatformAdapter, StockLevel
from tests.connectors import exactly_once
from tests.connectors.exactly_once import FAULTS, by_config, outgoing, push_all
from tests.connectors.fakes.faults import Faults
from tests.connectors.fakes.upserts import MOVED, Upserts, moved


@dataclass(frozen=True)
class UpsertPlatform:
    fake: Callable[[], Any]  # a new fake: .app(), .token_requests and its Upserts
    upserts: Callable[[Any], Upserts]
    config: Callable[[str], ConnectorConfig]  # from the fake's base URL
    write: str  # a part of the path product writes go to
    method: str  # theirs
    rows_per_write: int  # products a write carries, at most
    token_header: str
    login: str  # a part of the token endpoint's path
    expire_after: int  # calls a token serves in the expiry check, fewer than a push makes
    key: Callable[[OutgoingProduct], str]  # the fake's key, which is also the link
    update: str  # a part of the path stock updates go to
    update_method: str


# Served unpaced (at Amazon's documented 5 requests a second each case would last a
# minute, and what is checked here is what exists on the platform), the fake also
# reachable unfaulted under MOVED.
SERVING: dict[str, Any] = {"unpaced": True, "front": moved}


@asynccontextmanager
async def served(
    platform: UpsertPlatform, fake: Any, faults: Faults
) -> AsyncIterator[tuple[PlatformAdapter, str]]:
    """exactly_once.served for an upsert platform's `fake`: an adapter and the base URL."""
    async with exactly_once.served(fake.app(), by_config(platform.config), faults,
                                   **SERVING) as served_at:  # fmt: skip
        yield served_at


def assert_each_once(
    platform: UpsertPlatform, fake: Any, products: list[OutgoingProduct],
    links: dict[uuid.UUID, str], *, lost_answers: int,
) -> None:  # fmt: skip
    """Every product exists once on the platform, linked to it, and nothing was sent
    again but the writes whose answer was lost (upserts, so harmless): never a chunk."""
    upserts = platform.upserts(fake)
    expected = {p.product_id: platform.key(p) for p in products}
    assert links == expected
    assert set(upserts.records) == set(expected.values())
    assert sorted(upserts.created) == sorted(expected.values())  # each created once
    resent = sum(upserts.writes.values()) - len(products)
    assert 0 <= resent <= lost_answers * platform.rows_per_write, (resent, lost_answers)


async def check_exactly_once(platform: UpsertPlatform, fault: str) -> None:
    fake, products = platform.fake(), outgoing()
    # Armed for the platform's method: Amazon's writes are PUTs.
    links, rule = await exactly_once.push_through_fault(
        fake.app(), by_config(platform.config), fault, platform.write, products,
        method=platform.method, **SERVING,
    )  # fmt: skip
    lost = rule.fired if rule.kind != "before" else 0
    assert_each_once(platform, fake, products, links, lost_answers=lost)


async def check_expired_token_renewed(platform: UpsertPlatform) -> None:
    fake, products = platform.fake(), outgoing()
    links, _expiry = await exactly_once.push_with_expiring_tokens(
        fake.app(), by_config(platform.config), products, header=platform.token_header,
        calls=platform.expire_after, login=platform.login, **SERVING,
    )  # fmt: skip
    # One renewal each time the token expired, however many requests it was refused
    # to at once; a 401 wrote nothing.
    assert 2 <= fake.token_requests <= 1 + len(products) // platform.expire_after
    assert_each_once(platform, fake, products, links, lost_answers=0)


async def check_same_origin_redirect_followed(platform: UpsertPlatform) -> None:
    fake, products = platform.fake(), outgoing()
    links, redirect = await exactly_once.push_redirected_on_host(
        fake.app(), by_config(platform.config), platform.write, products,
        method=platform.method, under=MOVED, once=False, **SERVING,
    )  # fmt: skip
    assert redirect.fired >= len(products) / platform.rows_per_write
    assert_each_once(platform, fake, products, links, lost_answers=0)


async def check_redirect_elsewhere_refused(platform: UpsertPlatform) -> None:
    fake = platform.fake()
    await exactly_once.push_redirected_elsewhere(
        fake.app(), by_config(platform.config), platform.write, outgoing(20),
        method=platform.method, **SERVING,
    )  # fmt: skip
    assert not platform.upserts(fake).writes


async def check_lost_update_sent_again_alone(platform: UpsertPlatform) -> None:
    fake, faults = platform.fake(), Faults()
    products = outgoing(10)
    async with served(platform, fake, faults) as (adapter, _base):
        links = await push_all(adapter, products)
        faults.fail_after_commit(platform.update, method=platform.update_method)
        outcomes = await adapter.push_stock(
            [StockLevel(p.product_id, p.sku, 7, links[p.product_id]) for p in products]
        )
    assert [(o.ok, o.external_id) for o in outcomes] == [
        (True, links[p.product_id]) for p in products
    ]
    # Pushed, updated, and the update whose answer was lost sent again at once (a
    # stock level is a value: sending it again converges).
    resent = sum(platform.upserts(fake).writes.values()) - 2 * len(products)
    assert resent == min(len(products), platform.rows_per_write)


# Every check by name: each fault of FAULTS, then what tokens, redirects and lost
# answers to updates must not break.
CHECKS: dict[str, Callable[[UpsertPlatform], Awaitable[None]]] = {
    **{fault: partial(check_exactly_once, fault=fault) for fault in FAULTS},
    "a stock update whose answer was lost is sent again alone": check_lost_update_sent_again_alone,
    "an expired token is renewed and the push goes on": check_expired_token_renewed,
    "a write redirected on the same host is followed": check_same_origin_redirect_followed,
    "a write redirected to another host is refused": check_redirect_elsewhere_refused,
}
