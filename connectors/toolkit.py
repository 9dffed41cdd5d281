"""What several platform adapters share: cached access tokens (OAuth2 client
credentials among them), per-item calls for platforms without a batch endpoint,
polling of asynchronous integration reports, composite "product:variant" ids, and
multipart bodies (form uploads, OCAPI batch requests, OData $batch).
"""

import asyncio
import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar

from connectors.base import NOT_LINKED, ConnectorConfig, ItemOutcome
from connectors.http import Auth, PlatformError, PlatformHttp

# Renew a token this long before the platform says it expires, so that a request
# sent with it does not arrive just after.
TOKEN_MARGIN_SECONDS = 60.0


class Identified(Protocol):
    @property
    def product_id(self) -> uuid.UUID: ...


T = TypeVar("T")
Item = TypeVar("Item", bound=Identified)


class CachedToken:
    """An access token fetched when first needed and reused until shortly before it
    expires: token endpoints are rate-limited on their own. `fetch` answers the token
    and its lifetime in seconds."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires_at = 0.0

    async def get(self, refresh: bool = False) -> str:
        """The token; a new one when it is about to expire, or on `refresh` (the platform
        refused the current one with a 401)."""
        if refresh or self._token is None or time.monotonic() >= self._expires_at:
            token, lifetime = await self._fetch()
            self._token = token
            self._expires_at = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
        return self._token


def basic_authorization(user: str, password: str) -> str:
    """An HTTP Basic Authorization header value (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def jwt_lifetime(token: str, default: float) -> float:
    """Seconds until a JWT expires, from its `exp` claim (`default` when it has none):
    session tokens of Sylius, WiziShop and the like are renewed before they lapse."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"]) - time.time()
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error):
        return default


def bearer(token: CachedToken, **extra: str) -> Auth:
    """Credential headers for PlatformHttp: the token as a bearer, renewed after a 401."""

    async def headers(refresh: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {await token.get(refresh)}", **extra}

    return headers


class ClientCredentials:
    """An OAuth2 client-credentials token (a CachedToken fetched from `token_url`)."""

    def __init__(
        self,
        http: PlatformHttp,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        basic_auth: bool,
        scope: str | None = None,
    ) -> None:
        self.http = http
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.basic_auth = basic_auth
        self.scope = scope
        self._token = CachedToken(self._fetch)

    async def headers(self, refresh: bool = False) -> dict[str, str]:
        """Usable as PlatformHttp's `auth`: renewed after a 401."""
        return {"Authorization": f"Bearer {await self._token.get(refresh)}"}

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        headers: dict[str, str] = {}
        if self.basic_auth:
            headers["Authorization"] = basic_authorization(self.client_id, self.client_secret)
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        if self.scope:
            form["scope"] = self.scope
        response = await self.http.request(
            "POST", self.token_url, data=form, headers=headers, idempotent=True
        )
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in") or 300)


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


def handle_for(sku: str) -> str:
    """A product's handle (its URL key, unique on Shopify and Medusa), from its SKU:
    stable and unique like the SKU, so that it identifies the product on the platform."""
    return re.sub(r"[^a-z0-9]+", "-", sku.lower()).strip("-") or "product"


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


# --- multipart -------------------------------------------------------------


@dataclass
class Part:
    """One part of a multipart body; header names are lower-case when decoded."""

    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def new_boundary(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def encode_multipart(parts: Sequence[Part], boundary: str) -> bytes:
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in part.headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + part.body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    raise PlatformError(f"réponse multipart sans boundary ({content_type})")


def parse_headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def decode_multipart(body: bytes, content_type: str) -> list[Part]:
    delimiter = b"--" + boundary_of(content_type).encode()
    parts = []
    for segment in body.split(delimiter)[1:]:
        if segment.startswith(b"--"):
            break
        segment = segment.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = segment.partition(b"\r\n\r\n")
        parts.append(Part(parse_headers(head), content))
    return parts


def http_request_message(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    """An HTTP request as the body of an `application/http` part (OData $batch)."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_http_response(message: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an HTTP response carried in an `application/http` part."""
    head, _, body = message.partition(b"\r\n\r\n")
    status_line, _, header_block = head.partition(b"\r\n")
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise PlatformError(f"réponse de lot illisible : {status_line[:80]!r}")
    return int(fields[1]), parse_headers(header_block), body


def multipart_form(
    fields: dict[str, str], file_field: str, filename: str, file: bytes, file_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body with text fields and one file; answers the body and
    its Content-Type (PlatformHttp takes raw content)."""
    boundary = new_boundary("pim")
    parts = [
        Part({"Content-Disposition": f'form-data; name="{name}"'}, value.encode())
        for name, value in fields.items()
    ]
    disposition = f'form-data; name="{file_field}"; filename="{filename}"'
    parts.append(Part({"Content-Disposition": disposition, "Content-Type": file_type}, file))
    return encode_multipart(parts, boundary), f"multipart/form-data; boundary={boundary}"
