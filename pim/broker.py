"""Progress events: the latest state per topic, and a live stream of changes.

On the real stack both live in Redis (a key for the state, a pub/sub channel for
changes), so a worker's progress reaches every API replica. One pub/sub
connection per process fans out to its subscribers: a thousand watchers cost a
thousand small objects, not a thousand Redis connections. The embedded default
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


class Broker(Protocol):
    async def publish(self, topic: str, message: dict[str, Any]) -> None: ...

    async def latest(self, topic: str) -> dict[str, Any] | None: ...

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Subscribed on entry, so nothing published afterwards is missed."""
        ...

    async def close(self) -> None: ...


class _Newest:
    """A subscriber's newest undelivered message.

    Messages are states, each superseding the last: a subscriber that falls behind (a
    slow socket, a busy process) skips to the newest instead of working through stale
    ones, so it never lags more than one message and the final state is never dropped.
    """

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._ready = asyncio.Event()

    def put(self, message: dict[str, Any]) -> None:
        self._message = message
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            message, self._message = self._message, None
            if message is not None:
                yield message


class _FanOut:
    """Per-topic sets of subscribers."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[_Newest]] = {}

    def add(self, topic: str) -> _Newest:
        subscriber = _Newest()
        self.subscribers.setdefault(topic, set()).add(subscriber)
        return subscriber

    def remove(self, topic: str, subscriber: _Newest) -> bool:
        """Drop a subscriber; True when it was the topic's last one."""
        subscribers = self.subscribers.get(topic, set())
        subscribers.discard(subscriber)
        if not subscribers:
            self.subscribers.pop(topic, None)
            return True
        return False

    def deliver(self, topic: str, message: dict[str, Any]) -> None:
        for subscriber in self.subscribers.get(topic, ()):
            subscriber.put(message)


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
        subscriber = self._fanout.add(topic)
        try:
            yield aiter(subscriber)
        finally:
            self._fanout.remove(topic, subscriber)

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
        first = topic not in self._fanout.subscribers
        subscriber = self._fanout.add(topic)
        if first:
            await self._pubsub.subscribe(f"pim:topic:{topic}")
        try:
            yield aiter(subscriber)
        finally:
            if self._fanout.remove(topic, subscriber):
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
