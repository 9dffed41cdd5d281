"""Per-item calls for platforms without a batch endpoint for an operation: bounded
concurrency that stops after a transient failure, and stock or price updates
addressed to a product's variant.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Protocol, TypeVar

from connectors.base import NOT_LINKED, ItemOutcome
from connectors.external_ids import split_pair
from connectors.http import PlatformError


class Identified(Protocol):
    @property
    def product_id(self) -> uuid.UUID: ...


T = TypeVar("T")
Item = TypeVar("Item", bound=Identified)


@contextmanager
def default_wait(seconds: float) -> Iterator[None]:
    """A 429 that names no wait gets `seconds`, the window the platform documents."""
    try:
        yield
    except PlatformError as exc:
        if exc.status == 429 and exc.retry_after is None:
            exc.retry_after = seconds
        raise


async def run_bounded(
    calls: Sequence[Callable[[], Awaitable[T]]], *, limit: int
) -> list[T | PlatformError]:
    """Run the calls at most `limit` at a time, for platforms without a batch endpoint
    for the operation. A refusal (4xx) takes the place of its call's result. After a
    transient failure (throttling, outage) no further call starts, and the failure is
    raised once the running ones end, so the job retries the chunk after the wait the
    platform asked for instead of hammering it (the calls must be idempotent upserts,
    so a retry converges)."""
    gate = asyncio.Semaphore(limit)
    stopped: list[PlatformError] = []

    async def one(call: Callable[[], Awaitable[T]]) -> T | PlatformError:
        async with gate:
            if stopped:
                return stopped[0]
            try:
                return await call()
            except PlatformError as exc:
                if exc.transient:
                    stopped.append(exc)
                return exc

    results = await asyncio.gather(*(one(call) for call in calls))
    if stopped:
        raise stopped[0]
    return results


async def each_concurrently(
    items: Sequence[Item], call: Callable[[Item], Awaitable[str | None]], *, limit: int
) -> list[ItemOutcome]:
    """One call per item (see run_bounded); `call` answers the platform's id for the item."""
    results = await run_bounded([partial(call, item) for item in items], limit=limit)
    return [
        ItemOutcome(item.product_id, ok=False, error=result.message)
        if isinstance(result, PlatformError)
        else ItemOutcome(item.product_id, ok=True, external_id=result)
        for item, result in zip(items, results, strict=True)
    ]


async def each_item(
    items: Sequence[Item], call: Callable[[Item], Awaitable[str | None]]
) -> list[ItemOutcome]:
    """One call per item, one at a time."""
    return await each_concurrently(items, call, limit=1)


class Linked(Identified, Protocol):
    @property
    def external_id(self) -> str | None: ...


L = TypeVar("L", bound=Linked)
# An item, with its platform product id and variant id.
Addressed = tuple[L, str, str]


async def for_variants(
    items: Sequence[L],
    send: Callable[[list[Addressed[L]]], Awaitable[list[ItemOutcome]]],
) -> list[ItemOutcome]:
    """Stock or price updates addressed to variants: `send` gets the items linked to a
    variant (and answers their outcomes in order); the others fail as never pushed."""
    addressed: list[Addressed[L]] = []
    for item in items:
        product_id, variant_id = split_pair(item.external_id or "")
        if variant_id:
            addressed.append((item, product_id, variant_id))
    sent = iter(await send(addressed) if addressed else [])
    return [
        next(sent)
        if split_pair(item.external_id or "")[1]
        else ItemOutcome(item.product_id, ok=False, error=NOT_LINKED)
        for item in items
    ]
