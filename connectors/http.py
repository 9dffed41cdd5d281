"""HTTP for platform adapters: through the outbound guard, paced, retried per request.

A 429 or a 5xx is a transient PlatformError carrying how long to wait (Retry-After,
or the platform's own header when it has one); another 4xx is permanent.

Retries happen here, one request at a time, never by replaying a batch: a request
is sent again only when doing so cannot create anything twice. That is when the
platform said it did not process it (a 429, a connection never opened), or when the
request is safe to repeat (GET, PUT, DELETE, or a POST the adapter marks
`idempotent`: an upsert by its own key, a GraphQL query, a token request). A create
whose outcome is unknown (timeout, 5xx, reset after sending) is raised as
`uncertain`, for the caller to reconcile before sending it again.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from pim import outbound
from pim.outbound import OutboundBlocked, OutboundPolicy
from pim.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Errors raised before a byte of the request left: nothing can have been processed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class PlatformError(Exception):
    def __init__(
        self, message: str, *, status: int | None = None, transient: bool = False,
        retry_after: float | None = None, body: str | None = None, uncertain: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        # The whole error answer, for platforms that say in it which items were refused.
        self.body = body
        # The request may have been processed although no success came back.
        self.uncertain = uncertain


class ConnectorUnusable(PlatformError):
    """A failure of the connector as a whole (the platform retired the API it speaks,
    its address or a key it needs is missing), not of the items sent: the job stops
    with this reason instead of recording it as each product's error."""


def _seconds(name: str, value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - time.time())
    # Some platforms count in milliseconds (BigCommerce's X-Rate-Limit-Time-Reset-Ms).
    return max(0.0, seconds / 1000 if name.lower().endswith("-ms") else seconds)


def retry_after_seconds(
    response: httpx.Response, extra_headers: tuple[str, ...] = ()
) -> float | None:
    """The wait a platform asks for: Retry-After in seconds or as an HTTP date, or the
    platform's own header."""
    for name in ("Retry-After", *extra_headers):
        value = response.headers.get(name)
        if value is not None and (seconds := _seconds(name, value)) is not None:
            return seconds
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How many times one request is sent again, and how long to wait in between:
    the platform's own wait when it gives one, else exponential backoff with full jitter."""

    attempts: int = 0
    base_delay: float = 1.0
    max_delay: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetryPolicy":
        return cls(
            attempts=max(0, settings.connector_retry_attempts),
            base_delay=settings.connector_retry_base_delay,
            max_delay=settings.connector_retry_max_delay,
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class Bucket(Protocol):
    """What pacing needs of a bucket, kept in this process or shared through Redis."""

    async def take(self, cost: float = 1.0) -> None:
        """Wait until `cost` tokens are there, and spend them."""

    def pause(self, seconds: float) -> None:
        """Hold every request back for `seconds` (the platform says its window is spent)."""

    def mirror(self, available: float, rate: float, size: float) -> None:
        """Follow the platform's own account of the bucket (Shopify reports it)."""


class TokenBucket:
    """Requests paced at `rate` per second with bursts of `burst`, so that a connector
    stays under its platform's documented limit instead of being throttled; `pause`
    holds every request back when the platform says its window is spent."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def take(self, cost: float = 1.0) -> None:
        async with self.lock:
            self._refill()
            if self.tokens < cost:
                await asyncio.sleep((cost - self.tokens) / self.rate)
                self._refill()
            self.tokens -= cost

    def pause(self, seconds: float) -> None:
        self._refill()
        self.tokens = min(self.tokens, -seconds * self.rate)

    def mirror(self, available: float, rate: float, size: float) -> None:
        """Follow the platform's own account of the bucket (Shopify reports it)."""
        self.rate, self.burst = rate, size
        self.tokens = min(size, available)
        self.updated = time.monotonic()


@dataclass(frozen=True)
class Rate:
    """A platform's documented request rate: `per_second` sustained, `burst` at once."""

    per_second: float
    burst: float = 1.0


class Buckets(Protocol):
    """Where a connector's bucket lives: in this process, or in Redis so that every
    worker syncing the same connector spends one budget (pim.pacing)."""

    def bucket(self, key: str, rate: float, burst: float) -> Bucket: ...


class LocalBuckets:
    """One bucket per connector in this process, shared by its jobs: the embedded
    default, where every job runs in this one process."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str, rate: float, burst: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            bucket = self._buckets[key] = TokenBucket(rate, burst)
        return bucket


LOCAL_BUCKETS = LocalBuckets()


# Raises the PlatformError a platform reports inside a 2xx answer (Shopify's THROTTLED).
Check = Callable[[httpx.Response], None]
# Credential headers for a request. Asked again after a 401 with the headers that were
# refused (None otherwise): a token refused to several requests is renewed once, for
# all of them, whichever order their refusals come back in.
Auth = Callable[[Mapping[str, str] | None], Awaitable[Mapping[str, str]]]
# A platform's own pacing signal on an answer, applied to the connector's bucket
# (a spent rate window pauses it).
Signal = Callable[[httpx.Response, Bucket], None]


class PlatformHttp:
    def __init__(
        self, client: httpx.AsyncClient, policy: OutboundPolicy, *,
        retry: RetryPolicy | None = None, buckets: Buckets = LOCAL_BUCKETS,
    ) -> None:  # fmt: skip
        self.client = client
        self.policy = policy
        self.retry = retry or RetryPolicy()
        self.buckets = buckets
        self.bucket: Bucket | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        content: bytes | None = None,
        retry_headers: tuple[str, ...] = (),
        idempotent: bool | None = None,
        auth: Auth | None = None,
        signal: Signal | None = None,
        check: Check | None = None,
        cost: float = 1.0,
    ) -> httpx.Response:
        """Send one request (again after a transient failure when that is safe); raise
        PlatformError unless the answer is a success (2xx). `idempotent` marks a POST
        that may be repeated; `auth` gives the credential headers (renewed once after a
        401); `signal` reads a platform's pacing headers; `check` finds an error in a
        2xx answer; `cost` is what the request takes from the connector's bucket."""
        if not httpx.URL(url).host:
            # What an adapter without a default address builds from a connector saved
            # without one: the guard would only say the address has no scheme.
            raise ConnectorUnusable(
                f"adresse sans hôte : « {url} » (base_url du connecteur manquante ?)"
            )
        repeatable = idempotent if idempotent is not None else method.upper() in SAFE_METHODS
        renewed = False
        refused: Mapping[str, str] | None = None
        attempt = 0
        while True:
            # A new token is asked for once, on the attempt right after the 401: later
            # retries (a 429, a 5xx) go out with the token it brought.
            credentials = await auth(refused) if auth else {}
            sent = {**(headers or {}), **credentials}
            refused = None
            try:
                return await self._once(
                    method, url, retry_headers, signal, check, cost,
                    headers=sent, params=params, json=json, data=data, content=content,
                )  # fmt: skip
            except PlatformError as exc:
                if exc.status == 401 and auth is not None and not renewed:
                    renewed, refused = True, credentials
                    continue
                if not exc.transient or (exc.uncertain and not repeatable):
                    raise
                if attempt >= self.retry.attempts:
                    raise
                wait = self.retry.delay(attempt, exc.retry_after)
                if self.bucket is not None:
                    self.bucket.pause(wait)
                await asyncio.sleep(wait)
                attempt += 1

    async def _once(
        self, method: str, url: str, retry_headers: tuple[str, ...], signal: Signal | None,
        check: Check | None, cost: float, **arguments: Any,
    ) -> httpx.Response:  # fmt: skip
        request = self.client.build_request(method, url, **arguments)
        if self.bucket is not None:
            await self.bucket.take(cost)
        try:
            response = await outbound.send(self.client, request, self.policy, same_origin=True)
        except OutboundBlocked as exc:
            raise PlatformError(str(exc)) from exc
        except NOT_SENT as exc:
            raise PlatformError(f"plateforme injoignable : {exc}", transient=True) from exc
        except httpx.TransportError as exc:
            raise PlatformError(
                f"plateforme injoignable : {type(exc).__name__} {exc}",
                transient=True, uncertain=True,
            ) from exc  # fmt: skip
        await response.aread()
        if signal is not None and self.bucket is not None:
            signal(response, self.bucket)
        if response.is_success:
            if check is not None:
                check(response)
            return response
        if response.is_redirect:
            raise PlatformError(
                f"{method} {httpx.URL(url).path} : redirection vers un autre hôte refusée "
                f"({httpx.URL(response.headers.get('location', '')).host or '?'})",
                status=response.status_code,
            )
        throttled = response.status_code == 429
        transient = throttled or response.status_code >= 500
        raise PlatformError(
            f"{method} {httpx.URL(url).path} : HTTP {response.status_code} {response.text[:300]}",
            status=response.status_code,
            transient=transient,
            # A 429 says the request was not processed; a 5xx says nothing about it.
            uncertain=transient and not throttled,
            retry_after=retry_after_seconds(response, retry_headers) if transient else None,
            body=response.text,
        )
