"""Asynchronous integrations (feeds, imports, bulk jobs): polling a platform's report
until it is finished, and each sent item's outcome from it.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from connectors.base import ConnectorConfig, ItemOutcome
from connectors.item_calls import Item

T = TypeVar("T")


async def poll(
    fetch: Callable[[], Awaitable[T]], finished: Callable[[T], bool], *, attempts: int, wait: float
) -> T:
    """Ask an asynchronous platform for its report until `finished`, at most `attempts`
    times, `wait` seconds apart; answers the last report, finished or not."""
    report = await fetch()
    for _ in range(attempts - 1):
        if finished(report):
            break
        await asyncio.sleep(wait)
        report = await fetch()
    return report


async def poll_within(
    config: ConnectorConfig, fetch: Callable[[], Awaitable[T]], finished: Callable[[T], bool]
) -> T:
    """`poll`, for as long as the connector's configuration allows."""
    interval = config.poll_interval_seconds
    attempts = max(1, int(config.async_wait_seconds // interval) + 1)
    return await poll(fetch, finished, attempts=attempts, wait=interval)


# What a platform reported for one item of an asynchronous integration: ok, error.
Report = tuple[bool, str | None]


def reported_outcomes(
    items: Sequence[Item], keys: Sequence[str | None], reports: dict[str, Report], *,
    pending: str, unsent: str = "",
) -> list[ItemOutcome]:  # fmt: skip
    """Outcomes of items sent under `keys` (None: refused before sending, for `unsent`)
    from the platform's per-key reports; an item not reported yet is transient."""
    outcomes = []
    for item, key in zip(items, keys, strict=True):
        if key is None:
            outcomes.append(ItemOutcome(item.product_id, ok=False, error=unsent))
        elif key not in reports:
            outcomes.append(ItemOutcome(item.product_id, ok=False, transient=True, error=pending))
        else:
            ok, error = reports[key]
            outcomes.append(
                ItemOutcome(item.product_id, ok=ok, error=error, external_id=key if ok else None)
            )
    return outcomes
