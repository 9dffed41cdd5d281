"""A connector's pace is shared by every worker through Redis: two workers (here two
Redis clients, as two processes hold) syncing the same connector together stay under
the platform's rate, and another connector is not slowed by them."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from connectors.base import ConnectorConfig, adapter_for
from connectors.http import PlatformHttp
from pim import outbound
from pim.pacing import RedisBuckets
from tests.conftest import REDIS_URL
from tests.connectors.helpers import LOOPBACK

RATE, BURST = 40.0, 4.0
TAKES = 12  # by each of the two workers


@pytest.fixture
async def workers() -> AsyncIterator[tuple[RedisBuckets, RedisBuckets]]:
    first, second = RedisBuckets(REDIS_URL), RedisBuckets(REDIS_URL)
    yield first, second
    await first.close()
    await second.close()


async def spend(buckets: RedisBuckets, key: str, times: int, stamps: list[float]) -> None:
    bucket = buckets.bucket(key, RATE, BURST)
    for _ in range(times):
        await bucket.take()
        stamps.append(time.monotonic())


async def test_two_workers_on_one_connector_never_exceed_its_rate_together(
    workers: tuple[RedisBuckets, RedisBuckets],
) -> None:
    key, other = f"connector-{uuid.uuid4()}", f"connector-{uuid.uuid4()}"
    shared: list[float] = []
    alone: list[float] = []
    started = time.monotonic()
    await asyncio.gather(
        spend(workers[0], key, TAKES, shared),
        spend(workers[1], key, TAKES, shared),
        spend(workers[1], other, int(BURST), alone),
    )
    shared.sort()
    # Whatever the span, the requests sent in it are at most the burst plus the rate
    # times the span (a few milliseconds of slack for the event loop's timers).
    for i, first in enumerate(shared):
        for j in range(i, len(shared)):
            assert j - i + 1 <= BURST + RATE * (shared[j] - first + 0.005), (i, j)
    assert shared[-1] - started >= (2 * TAKES - BURST) / RATE - 0.01
    # The other connector's burst went out at once, while the first one was waiting.
    assert alone[-1] - started < 1 / RATE


async def test_a_spent_window_signalled_to_one_worker_holds_the_other_back(
    workers: tuple[RedisBuckets, RedisBuckets],
) -> None:
    key = f"connector-{uuid.uuid4()}"
    told, other = workers[0].bucket(key, RATE, BURST), workers[1].bucket(key, RATE, BURST)
    told.pause(0.3)  # the platform answered "window spent, 300 ms to go"
    waiting = asyncio.create_task(told.take())
    await asyncio.sleep(0.05)  # its reservation is in Redis; it sleeps out the window
    started = time.monotonic()
    await other.take()
    assert time.monotonic() - started >= 0.2
    await waiting


async def test_adapters_of_one_connector_in_two_workers_share_its_bucket(
    workers: tuple[RedisBuckets, RedisBuckets],
) -> None:
    connector_id = str(uuid.uuid4())
    config = ConnectorConfig("squarespace", None, {"api_key": "k"}, connector_id=connector_id)
    async with outbound.client() as client:
        adapters = [
            adapter_for(config, PlatformHttp(client, LOOPBACK, buckets=buckets))
            for buckets in workers
        ]
    keys = {getattr(a.http.bucket, "key", None) for a in adapters}
    assert keys == {f"pim:pace:{connector_id}"}
