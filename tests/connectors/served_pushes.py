"""Pushes of the exactly-once matrix (tests.connectors.exactly_once) against a fake
served on loopback behind its `Faults`: through the armed faults, and redirected to
another host (served on 127.0.0.2), where nothing may arrive.
"""

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from connectors.base import ItemOutcome, OutgoingProduct, PlatformAdapter
from connectors.http import PlatformHttp, RetryPolicy
from jobs.sync import push_products_once
from pim import outbound
from tests.connectors.exactly_once import FAULTS, HANG_SECONDS, SETTINGS, push_all
from tests.connectors.fakes.faults import Faults
from tests.connectors.helpers import LOOPBACK
from tests.loopback import serve

# The adapter that reaches a fake at its base URL through a guarded client.
Reach = Callable[[str, PlatformHttp], PlatformAdapter]


def matrix_http(client: httpx.AsyncClient) -> PlatformHttp:
    return PlatformHttp(client, LOOPBACK, retry=RetryPolicy.from_settings(SETTINGS))


async def push_through(
    app: Any, faults: Faults, reach: Reach, products: Sequence[OutgoingProduct], *,
    arm: Callable[[str], object] = lambda _base: None,
) -> dict[Any, str]:  # fmt: skip
    """`push_all` against `app` behind `faults` (`arm` adds rules that need the fake's
    base URL); a client timeout shorter than the faults' hang."""
    faults.hang_seconds = HANG_SECONDS
    async with serve(faults.wrap(app)) as base, outbound.client(timeout=1.0) as client:
        arm(base)
        return await push_all(reach(base, matrix_http(client)), products)


async def push_through_fault(
    app: Any, fault: str, path: str, reach: Reach, products: Sequence[OutgoingProduct]
) -> dict[Any, str]:
    """`push_through` the matrix's `fault`, armed on the writes to `path`; it must fire."""
    faults = Faults()
    FAULTS[fault](faults, path)
    links = await push_through(app, faults, reach, products)
    assert faults.rules[0].fired >= 1
    return links


def assert_sent_again(fault: str, sends: Counter[str], chunk: int = 100) -> None:
    """What a platform that upserts by our key received twice through `fault` (`sends`:
    how many times each key arrived): the chunk whose answer was lost, sent again
    whole; nothing for throttling, which refuses before processing."""
    again = [key for key, count in sends.items() if count > 1]
    assert len(again) == (0 if fault == "throttled mid-push" else chunk), again[:5]


async def push_redirected_on_host(
    app: Any, path: str, reach: Reach, products: Sequence[OutgoingProduct]
) -> dict[Any, str]:
    """`push_through` a 307 of the second POST to `path` to the same URL (a gateway
    moving the request on the platform's own host): it is followed, once."""
    faults = Faults()

    def arm(base: str) -> None:
        faults.redirect(path, base, status=307, method="POST", at=2, times=1)

    links = await push_through(app, faults, reach, products, arm=arm)
    assert faults.rules[0].fired == 1
    return links


async def push_redirected_elsewhere(
    app: Any, elsewhere: Any, path: str, reach: Reach, products: Sequence[OutgoingProduct]
) -> list[ItemOutcome]:
    """One chunk pushed as the sync job pushes it, while every POST to `path` is
    redirected (307) to `elsewhere`, on another host: each product fails with the
    refused redirect, and is not sent again."""
    faults = Faults()
    async with (
        serve(faults.wrap(app)) as base,
        serve(elsewhere, host="127.0.0.2") as other,
        outbound.client() as client,
    ):
        faults.redirect(path, other, status=307, method="POST")
        outcomes = await push_products_once(
            SETTINGS, reach(base, matrix_http(client)), products, lambda _ids: asyncio.sleep(0)
        )
    assert {(o.ok, o.transient) for o in outcomes} == {(False, False)}
    assert all("redirection vers un autre hôte refusée (127.0.0.2)" in (o.error or "")
               for o in outcomes)  # fmt: skip
    return outcomes
