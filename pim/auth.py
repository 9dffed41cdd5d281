"""API keys: generation, hashing, scopes, and the caller a key stands for."""

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
KEY_PREFIX = "pm_live_"

SCOPES: dict[str, str] = {
    "ext:products:read": "External API: read products",
    "ext:products:write": "External API: create and update products",
    "windev:read": "WinDev API: read products, categories and suppliers",
    "windev:write": "WinDev API: update products, stock and prices",
    "windev:sync": "WinDev API: batch product sync",
    "products:read": "Products API: read products",
    "products:write": "Products API: create, update and delete products",
    "imports:read": "Imports: read jobs, logs and automations",
    "imports:write": "Imports: create and control jobs and automations",
    "connectors:read": "Connectors: read connectors and sync jobs",
    "settings:manage": "Manage settings: connectors, webhooks, API keys (MANAGE_SETTINGS)",
}


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(plain: str) -> str:
    # Keys carry 256 random bits, so a fast unsalted hash cannot be brute-forced
    # and lets authentication be one indexed lookup.
    return hashlib.sha256(plain.encode()).hexdigest()


def display_prefix(plain: str) -> str:
    return plain[: len(KEY_PREFIX) + 6]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated API key and the account it acts for."""

    account_id: uuid.UUID
    account_name: str
    key_id: uuid.UUID
    key_name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    rate_limit_per_minute: int | None = None
    strict_ean: bool = False
    graphql_persisted_only: bool = False

    def has_any(self, scopes: frozenset[str] | set[str]) -> bool:
        return not self.scopes.isdisjoint(scopes)


class CallerCache:
    """The callers of recently authenticated keys, by key hash, for `ttl` seconds.

    Most requests then skip the key lookup (a transaction and a query). The price, by
    design: a key revoked (or an account changed) by another process — the CLI, another
    API worker or replica — keeps working in this process for at most `ttl` seconds;
    `forget` drops a key revoked in this process at once. Unknown keys are never
    cached: a new key works at once, and random keys cannot fill the cache.
    """

    def __init__(
        self, ttl: float, max_size: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.clock = clock
        # Insertion order is expiry order: entries are only ever added with now + ttl.
        self._entries: dict[str, tuple[Caller, float]] = {}
        self._lookups: dict[str, asyncio.Future[Any]] = {}

    def get(self, key_hash: str) -> Caller | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            del self._entries[key_hash]
            return None
        return entry[0]

    def put(self, key_hash: str, caller: Caller) -> None:
        self._entries.pop(key_hash, None)
        if len(self._entries) >= self.max_size:
            del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = (caller, self.clock() + self.ttl)

    def forget(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)

    async def looked_up(self, key_hash: str, lookup: Callable[[], Awaitable[T]]) -> T:
        """`lookup()` once for the requests that miss the same key meanwhile. When a busy
        key's entry expires, every request in flight used to run its own lookup (a
        transaction, and the same row's last use updated, one after the other): 32
        clients stalled together every `ttl` seconds, the tail of figure 3's latency."""
        pending = self._lookups.get(key_hash)
        if pending is None:
            pending = self._lookups[key_hash] = asyncio.ensure_future(lookup())
            pending.add_done_callback(lambda done: self._done(key_hash, done))
        # Shielded: a request that goes away does not cancel the others' lookup.
        return await asyncio.shield(pending)  # type: ignore[no-any-return]

    def _done(self, key_hash: str, lookup: asyncio.Future[Any]) -> None:
        self._lookups.pop(key_hash, None)
        if not lookup.cancelled():
            lookup.exception()  # retrieved: every request awaiting it may have gone
