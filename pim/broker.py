"""Progress events: the latest state per topic, and a live stream of changes.

On the real stack both live in Redis (a key for the state, a pub/sub channel for
changes), so a worker's progress reaches every API replica. One pub/sub
connection per process fans out to per-subscriber queues: a thousand watchers
cost a thousand queues, not a thousand Redis connections. The embedded default
keeps the same contract in process.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

# A late subscriber must find the state: kept well past any job's end.
STATE_TTL_SECONDS = 7 * 24 * 3600
QUEUE_SIZE = 1000


class Broker(Protocol):
    async def publish(self, topic: str, message: dict[str, Any]) -> None: ...

    async def latest(self, topic: str) -> dict[str, Any] | None: ...

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Subscribed on entry, so nothing published afterwards is missed."""
        ...

    async def close(self) -> None: ...


class _FanOut:
    """Per-topic sets of subscriber queues; a slow subscriber drops its oldest messages."""

    def __init__(self) -> None:
        self.queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    def add(self, topic: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.queues.setdefault(topic, set()).add(queue)
        return queue

    def remove(self, topic: str, queue: asyncio.Queue[dict[str, Any]]) -> bool:
        """Drop a subscriber; True when it was the topic's last one."""
        subscribers = self.queues.get(topic, set())
        subscribers.discard(queue)
        if not subscribers:
            self.queues.pop(topic, None)
            return True
        return False

    def deliver(self, topic: str, message: dict[str, Any]) -> None:
        for queue in self.queues.get(topic, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)


async def _drain(queue: asyncio.Queue[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    while True:
        yield await queue.get()


class InProcessBroker:
    def __init__(self) -> None:
        self._state: dict[str, dict[str, Any]] = {}
        self._fanout = _FanOut()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        self._state[topic] = message
        self._fanout.deliver(topic, message)

    async def latest(self, topic: str) -> dict[str, Any] | None:
        return self._state.get(topic)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        queue = self._fanout.add(topic)
        try:
            yield _drain(queue)
        finally:
            self._fanout.remove(topic, queue)

    async def close(self) -> None:
        self._state.clear()


class RedisBroker:
    def __init__(self, redis_url: str) -> None:
        self._redis = aioredis.from_url(redis_url)
        self._fanout = _FanOut()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        payload = orjson.dumps(message)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"pim:state:{topic}", payload, ex=STATE_TTL_SECONDS)
            pipe.publish(f"pim:topic:{topic}", payload)
            await pipe.execute()

    async def latest(self, topic: str) -> dict[str, Any] | None:
        raw = await self._redis.get(f"pim:state:{topic}")
        return orjson.loads(raw) if raw else None

    async def _ensure_reader(self) -> None:
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                # A placeholder subscription lets the reader start before any topic.
                await self._pubsub.subscribe("pim:topic:__keepalive__")
                self._reader = asyncio.create_task(self._read(), name="broker-reader")

    async def _read(self) -> None:
        async for item in self._pubsub.listen():
            if item.get("type") != "message":
                continue
            channel = item["channel"].decode()
            self._fanout.deliver(channel.removeprefix("pim:topic:"), orjson.loads(item["data"]))

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        await self._ensure_reader()
        first = topic not in self._fanout.queues
        queue = self._fanout.add(topic)
        if first:
            await self._pubsub.subscribe(f"pim:topic:{topic}")
        try:
            yield _drain(queue)
        finally:
            if self._fanout.remove(topic, queue):
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(f"pim:topic:{topic}")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self._redis.aclose()
