"""Access tokens the adapters cache and renew: OAuth2 client credentials, JWT session
tokens read for their expiry, bearer and Basic headers for PlatformHttp.
"""

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from connectors.http import Auth, PlatformHttp

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
    and its lifetime in seconds. Requests sent at once wait for one fetch instead of
    each making its own (a push's first calls go out several at a time, and are
    refused together when the token expires)."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        # Tokens fetched so far: which fetch a request's credentials carry.
        self.fetched = 0

    async def get(self, refused: int | None = None) -> str:
        """The token; a new one when it is about to expire, or when the fetch `refused`
        (`fetched` when a request the platform answered 401 to was sent) is still the
        current one. A token refused to several requests is renewed once: the later
        refusals find it already replaced, even when the platform handed out the same
        token again."""
        async with self._lock:
            expired = time.monotonic() >= self._expires_at
            if self._token is None or refused == self.fetched or expired:
                token, lifetime = await self._fetch()
                self._token = token
                self._expires_at = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
                self.fetched += 1
            return self._token


class Credentials(dict[str, str]):
    """Credential headers, and the fetch of the token they carry (CachedToken.fetched):
    PlatformHttp hands them back after a 401, and the token is renewed only if that
    fetch is still the current one."""

    def __init__(self, headers: Mapping[str, str], fetch: int) -> None:
        super().__init__(headers)
        self.fetch = fetch


def _refused_fetch(refused: Mapping[str, str] | None) -> int | None:
    """The fetch of the token in credentials a platform refused (None: nothing refused)."""
    return refused.fetch if isinstance(refused, Credentials) else None


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


def token_header(token: CachedToken, name: str, prefix: str = "", **extra: str) -> Auth:
    """Credential headers for PlatformHttp: the token in header `name`, renewed after a
    401 (once for all the requests it was refused to). One serves all of an adapter's
    requests: what a request was sent with comes back to it in `refused`."""

    async def headers(refused: Mapping[str, str] | None) -> Credentials:
        value = await token.get(_refused_fetch(refused))
        return Credentials({name: prefix + value, **extra}, token.fetched)

    return headers


def bearer(token: CachedToken, **extra: str) -> Auth:
    """Credential headers for PlatformHttp: the token as a bearer, renewed after a 401."""
    return token_header(token, "Authorization", "Bearer ", **extra)


class ClientCredentials:
    """An OAuth2 client-credentials token (a CachedToken fetched from `token_url`), sent
    as a bearer or in a header of the platform's own (`header`, `prefix`)."""

    def __init__(
        self,
        http: PlatformHttp,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        basic_auth: bool,
        scope: str | None = None,
        header: str = "Authorization",
        prefix: str = "Bearer ",
    ) -> None:
        self.http = http
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.basic_auth = basic_auth
        self.scope = scope
        # PlatformHttp's `auth`: renewed after a 401.
        self.headers = token_header(CachedToken(self._fetch), header, prefix)

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
