"""Request bodies read under a budget: a size limit checked while the bytes arrive (a
declared Content-Length is only believed when it is already too big), a read timeout on
every wait for the next piece and a minimum average rate, so that a client that declares
a gigabyte and sends nothing, or a byte now and then, holds a connection for seconds,
not minutes.

The budget starts at the JSON limit for every request. Whoever admits a request
changes it from the headers, before the body is read: an import upload raises it to the
upload limit, an anonymous GraphQL request lowers it to what introspection needs. The
limits are enforced where the application reads (the `receive` it is given raises), so
the refusal is an exception that each surface maps to its own envelope.
"""

import asyncio
import time
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pim.settings import Settings

SCOPE_KEY = "pim.body_budget"


class BodyRefused(Exception):
    """The request body is not read any further."""


class BodyTooLarge(BodyRefused):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Corps de requête trop volumineux (limite : {limit} octets).")
        self.limit = limit


class BodyTimedOut(BodyRefused):
    def __init__(self, seconds: float, min_rate: int) -> None:
        super().__init__(
            f"Corps de requête reçu trop lentement (délai de lecture : {seconds:g} s, "
            f"débit minimal : {min_rate} octets/s)."
        )


@dataclass
class BodyBudget:
    limit: int
    declared: int | None = None  # Content-Length, when given and well formed
    received: int = 0
    complete: bool = False
    # What to raise beyond the limit instead of BodyTooLarge: for an anonymous request,
    # "authenticate first" is the truth, not "too large".
    overflow: Exception | None = None

    def allow(self, limit: int, overflow: Exception | None = None) -> None:
        self.limit = limit
        self.overflow = overflow

    def check(self, size: int) -> None:
        if size > self.limit:
            raise self.overflow or BodyTooLarge(self.limit)


def budget_of(scope: Scope) -> BodyBudget:
    budget: BodyBudget = scope[SCOPE_KEY]
    return budget


def _budget(scope: Scope, limit: int) -> BodyBudget:
    headers = dict(scope.get("headers", ()))
    length = headers.get(b"content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    # Without a length or a chunked encoding, HTTP/1.1 says there is no body at all.
    has_body = (length is not None and declared != 0) or b"transfer-encoding" in headers
    return BodyBudget(limit=limit, declared=declared, complete=not has_body)


class BodyLimits:
    """A plain ASGI middleware giving the application a `receive` that counts and times out."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = scope[SCOPE_KEY] = _budget(scope, self.settings.max_body_bytes)
        timeout = self.settings.body_read_timeout_seconds
        min_rate = self.settings.body_min_bytes_per_second
        started = time.monotonic()

        def next_wait() -> float:
            # The idle timeout, or less once the body is so far behind the minimum rate
            # (after a first idle timeout of grace) that it has run out of time: a client
            # sending a byte every few seconds is not idle, and would hold a connection
            # for as long as it likes.
            behind = started + timeout + budget.received / min_rate - time.monotonic()
            return min(timeout, behind)

        async def limited_receive() -> Message:
            if budget.complete:
                # Only the disconnect is left to wait for, as long as the response takes.
                message = await receive()
            else:
                if budget.declared is not None:
                    budget.check(budget.declared)
                try:
                    async with asyncio.timeout(next_wait()):
                        message = await receive()
                except TimeoutError:
                    raise BodyTimedOut(timeout, min_rate) from None
            if message["type"] == "http.request":
                budget.received += len(message.get("body", b""))
                budget.check(budget.received)
                budget.complete = not message.get("more_body", False)
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not budget.complete:
                # Answered before the body was read (refused, or not needed): close the
                # connection, or the server would go on receiving the rest of it.
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, limited_receive, send_closing)
