"""A small cache shared by every API process (the runtime's memo): Redis on the real
stack, so every API replica sees it, a bounded dict in process otherwise. Values are
JSON; entries expire."""

import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

TTL_SECONDS = 900
MEMORY_ENTRIES = 10_000


class Memo(Protocol):
    async def get(self, key: str) -> Any: ...

    async def set(self, key: str, value: Any) -> None: ...

    async def close(self) -> None: ...


class MemoryMemo:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    async def get(self, key: str) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    async def set(self, key: str, value: Any) -> None:
        self._entries[key] = (time.monotonic() + TTL_SECONDS, value)
        self._entries.move_to_end(key)
        while len(self._entries) > MEMORY_ENTRIES:
            self._entries.popitem(last=False)

    async def close(self) -> None:
        self._entries.clear()


class RedisMemo:
    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url)

    async def get(self, key: str) -> Any:
        raw = await self._redis.get(f"pim:memo:{key}")
        return orjson.loads(raw) if raw else None

    async def set(self, key: str, value: Any) -> None:
        await self._redis.set(f"pim:memo:{key}", orjson.dumps(value), ex=TTL_SECONDS)

    async def close(self) -> None:
        await self._redis.aclose()
