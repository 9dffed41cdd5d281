"""Small pieces several adapters share: cached bearer tokens, per-item calls for
platforms without a batch endpoint, and composite external ids.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Protocol, TypeVar

from connectors.base import ItemOutcome
from connectors.http import PlatformError

# Renew a token this long before it expires, so a request sent with it does not arrive
# just after the expiry.
TOKEN_MARGIN_SECONDS = 60.0


class CachedToken:
    """An access token fetched when first needed and reused until shortly before it
    expires: token endpoints are rate-limited on their own. `fetch` answers the token
    and its lifetime in seconds."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires_at = 0.0

    async def get(self) -> str:
        if self._token is None or time.monotonic() >= self._expires_at:
            token, lifetime = await self._fetch()
            self._token = token
            self._expires_at = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
        return self._token


@contextmanager
def default_wait(seconds: float) -> Iterator[None]:
    """A 429 that names no wait gets `seconds`, the window the platform documents."""
    try:
        yield
    except PlatformError as exc:
        if exc.status == 429 and exc.retry_after is None:
            exc.retry_after = seconds
        raise


class Identified(Protocol):
    @property
    def product_id(self) -> uuid.UUID: ...


I = TypeVar("I", bound=Identified)  # noqa: E741
T = TypeVar("T")


async def run_bounded(
    calls: Sequence[Callable[[], Awaitable[T]]], *, limit: int
) -> list[T | PlatformError]:
    """Run the calls at most `limit` at a time, for platforms without a batch endpoint
    for the operation. A refusal (4xx) takes the place of its call's result; a transient
    failure (throttling, outage) is raised once every call has ended, so the job retries
    the chunk after the wait the platform asked for (the calls must be idempotent
    upserts, so a retry converges)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T | PlatformError:
        async with gate:
            try:
                return await call()
            except PlatformError as exc:
                return exc

    results = await asyncio.gather(*(one(call) for call in calls))
    for result in results:
        if isinstance(result, PlatformError) and result.transient:
            raise result
    return results


async def each_concurrently(
    items: Sequence[I], call: Callable[[I], Awaitable[str | None]], *, limit: int
) -> list[ItemOutcome]:
    """One call per item (see run_bounded); `call` answers the platform's id for the item."""
    results = await run_bounded([partial(call, item) for item in items], limit=limit)
    return [
        ItemOutcome(item.product_id, ok=False, error=result.message)
        if isinstance(result, PlatformError)
        else ItemOutcome(item.product_id, ok=True, external_id=result)
        for item, result in zip(items, results, strict=True)
    ]


def not_linked(product_id: uuid.UUID, platform: str) -> ItemOutcome:
    """The outcome of a stock or price update for a product never pushed to the platform."""
    return ItemOutcome(
        product_id, ok=False, error=f"produit pas encore publié sur {platform} (aucun lien)"
    )


# Platforms where a sellable item is a variant of a product need both ids to update
# it; the link stores them as one external id, "product:variant".
def pair_id(product: str, variant: str) -> str:
    return f"{product}:{variant}"


def split_pair(external_id: str) -> tuple[str, str | None]:
    product, _, variant = external_id.partition(":")
    return product, variant or None


class Linked(Identified, Protocol):
    @property
    def external_id(self) -> str | None: ...


L = TypeVar("L", bound=Linked)
# An item, with its platform product id and variant id.
Addressed = tuple[L, str, str]


async def for_variants(
    items: Sequence[L],
    platform: str,
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
        else not_linked(item.product_id, platform)
        for item in items
    ]


def multipart_form(
    fields: dict[str, str], file_field: str, filename: str, file: bytes, file_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body with text fields and one file; answers the body and
    its Content-Type (PlatformHttp takes raw content)."""
    boundary = f"pim-{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{filename}"\r\nContent-Type: {file_type}\r\n\r\n'
    ).encode()
    out += file + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
