"""Job progress: publish a job's state, and watch it from its current state to its end.

A watcher subscribes before it reads the current state, so nothing published in
between is lost, and it stops by itself at a final status.
"""

from collections.abc import AsyncIterator, Collection
from typing import Any

from pim.broker import Broker


def topic(kind: str, job_id: object) -> str:
    return f"{kind}:{job_id}"


async def publish(broker: Broker, kind: str, job_id: object, state: dict[str, Any]) -> None:
    await broker.publish(topic(kind, job_id), state)


async def watch(
    broker: Broker,
    kind: str,
    job_id: object,
    *,
    final: Collection[str],
    initial: dict[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The current state (from the broker, else `initial`), then every change until final."""
    name = topic(kind, job_id)
    async with broker.subscribe(name) as changes:
        current = await broker.latest(name) or initial
        if current is not None:
            yield current
            if current.get("status") in final:
                return
        async for state in changes:
            yield state
            if state.get("status") in final:
                return
