"""Admission: who calls, whether the key's rate budget allows one more request, and
whether the key holds the scope the request needs — decided from the headers alone,
before any body is read, the same way for REST, GraphQL and websockets."""

from collections.abc import Mapping
from dataclasses import dataclass

from pim.auth import Caller
from pim.db import Database
from pim.ratelimit import RateLimiter, RateWindow
from resolvers import keys
from resolvers.errors import DomainError, RateLimited, Unauthenticated
from resolvers.permissions import ALLOWED, Operation, require_any


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of admitting a request: the caller, the rate window it used (shown in
    the response's headers, a refused one too), and why it is refused, if it is."""

    caller: Caller | None
    window: RateWindow | None = None
    refusal: DomainError | None = None

    def admitted(self) -> Caller:
        """The caller, or the refusal raised."""
        if self.refusal is not None:
            raise self.refusal
        if self.caller is None:
            raise Unauthenticated()
        return self.caller


def presented_key(headers: Mapping[str, str]) -> str | None:
    """X-API-Key, or Authorization: Bearer — both are accepted everywhere. `headers` has
    lower-case names (HTTP headers, or a websocket's connection_init payload lowered)."""
    key = headers.get("x-api-key")
    if key:
        return str(key).strip()
    authorization = headers.get("authorization") or ""
    scheme, _, token = str(authorization).partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def admit(
    db: Database,
    limiter: RateLimiter,
    presented: str | None,
    scopes: frozenset[str] | Operation | None = None,
) -> Admission:
    """Authenticate the presented key, count the request against its rate limit, then
    check that it holds one of `scopes` (None: the operations check their own)."""
    try:
        caller = await keys.caller_for(db, presented)
    except Unauthenticated as exc:
        return Admission(caller=None, refusal=exc)
    window = await limiter.hit(caller.key_id, caller.rate_limit_per_minute)
    if not window.allowed:
        limited = RateLimited(retry_after=window.retry_after)
        return Admission(caller, window, limited)
    if scopes is not None:
        try:
            require_any(caller, ALLOWED[scopes] if isinstance(scopes, Operation) else scopes)
        except DomainError as exc:
            return Admission(caller, window, exc)
    return Admission(caller, window)
