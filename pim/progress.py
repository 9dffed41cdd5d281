"""Job progress: publish a job's state, and watch it from its current state to its end.

A watcher subscribes before it reads the current state, so nothing published in
between is lost; what was published before the read and arrives after it is dropped
as stale, and the stream stops by itself at a final status.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

from pim.broker import Broker

State = dict[str, Any]


def topic(kind: str, job_id: object) -> str:
    return f"{kind}:{job_id}"


async def publish(broker: Broker, kind: str, job_id: object, state: State) -> None:
    await broker.publish(topic(kind, job_id), state)


async def watch(
    broker: Broker,
    kind: str,
    job_id: object,
    *,
    final: Collection[str],
    current: Callable[[], Awaitable[State | None]] | None = None,
    counter: str | None = None,
) -> AsyncIterator[State]:
    """The current state, then every newer change until a final status.

    `current` reads the state after subscribing (by default the broker's latest); a
    source that is never behind the broker, such as the database a job commits to
    before it publishes, makes the first state exact. A change is stale when it
    repeats the last state or, with `counter`, counts less work than it; a final
    status is never stale, so the stream cannot miss its end.
    """
    name = topic(kind, job_id)
    async with broker.subscribe(name) as changes:
        last = await (current() if current is not None else broker.latest(name))
        if last is not None:
            yield last
            if last.get("status") in final:
                return
        async for state in changes:
            if last is not None and _stale(state, last, final=final, counter=counter):
                continue
            last = state
            yield state
            if state.get("status") in final:
                return


def _stale(state: State, last: State, *, final: Collection[str], counter: str | None) -> bool:
    if state == last:
        return True
    if counter is None or state.get("status") in final:
        return False
    return bool(state[counter] < last[counter])
