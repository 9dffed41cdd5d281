"""What several platform adapters share: OAuth2 client-credentials tokens, one call per
item for platforms without a batch endpoint, polling of asynchronous integration
reports, and multipart bodies for batch APIs (OCAPI batch requests, OData $batch).
"""

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from connectors.base import ItemOutcome
from connectors.http import PlatformError, PlatformHttp

# Renew a token this long before the platform says it expires, so that a request
# sent with it does not arrive just after.
TOKEN_MARGIN_SECONDS = 60.0


class Identified(Protocol):
    @property
    def product_id(self) -> uuid.UUID: ...


T = TypeVar("T")
Item = TypeVar("Item", bound=Identified)


class ClientCredentials:
    """An OAuth2 client-credentials token, fetched when first needed and reused until
    shortly before it expires (token endpoints are rate-limited on their own)."""

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
        self._token: str | None = None
        self._expires_at = 0.0

    async def headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._expires_at:
            await self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self) -> None:
        form = {"grant_type": "client_credentials"}
        headers: dict[str, str] = {}
        if self.basic_auth:
            pair = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        if self.scope:
            form["scope"] = self.scope
        response = await self.http.request("POST", self.token_url, data=form, headers=headers)
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in") or 300)
        self._expires_at = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)


async def each_item(
    items: Sequence[Item], call: Callable[[Item], Awaitable[str | None]]
) -> list[ItemOutcome]:
    """One call per item, for platforms that have no batch endpoint for the operation.

    `call` returns the platform's id for the item. A refusal (a 4xx) is that item's
    outcome and the others go on; a transient failure (throttling, outage) stops the
    chunk and propagates, so the job retries it after the wait the platform asked for
    instead of hammering it with the rest.
    """
    outcomes = []
    for item in items:
        try:
            external_id = await call(item)
        except PlatformError as exc:
            if exc.transient:
                raise
            outcomes.append(ItemOutcome(item.product_id, ok=False, error=exc.message))
        else:
            outcomes.append(ItemOutcome(item.product_id, ok=True, external_id=external_id))
    return outcomes


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


# --- multipart/mixed -------------------------------------------------------------


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
