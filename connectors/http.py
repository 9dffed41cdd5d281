"""HTTP for platform adapters: through the outbound guard, with rate-limit signals mapped.

A 429 or a 5xx is a transient PlatformError carrying how long to wait (Retry-After,
or the platform's own header when it has one); another 4xx is permanent.
"""

from collections.abc import Mapping
from typing import Any

import httpx

from pim import outbound
from pim.outbound import OutboundBlocked, OutboundPolicy


class PlatformError(Exception):
    def __init__(
        self, message: str, *, status: int | None = None, transient: bool = False,
        retry_after: float | None = None, body: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        # The whole error answer, for platforms that say in it which items were refused.
        self.body = body


def retry_after_seconds(
    response: httpx.Response, extra_headers: tuple[str, ...] = ()
) -> float | None:
    for name in ("Retry-After", *extra_headers):
        value = response.headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        # Some platforms count in milliseconds (BigCommerce's X-Rate-Limit-Time-Reset-Ms).
        return max(0.0, seconds / 1000 if name.lower().endswith("-ms") else seconds)
    return None


class PlatformHttp:
    def __init__(self, client: httpx.AsyncClient, policy: OutboundPolicy) -> None:
        self.client = client
        self.policy = policy

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
    ) -> httpx.Response:
        """Send one request; raise PlatformError unless the answer is a success (2xx)."""
        request = self.client.build_request(
            method, url, headers=headers, params=params, json=json, data=data, content=content
        )
        try:
            response = await outbound.send(self.client, request, self.policy)
        except OutboundBlocked as exc:
            raise PlatformError(str(exc)) from exc
        except httpx.TransportError as exc:
            raise PlatformError(f"plateforme injoignable : {exc}", transient=True) from exc
        if response.is_success:
            return response
        await response.aread()
        transient = response.status_code == 429 or response.status_code >= 500
        raise PlatformError(
            f"{method} {httpx.URL(url).path} : HTTP {response.status_code} {response.text[:300]}",
            status=response.status_code,
            transient=transient,
            retry_after=retry_after_seconds(response, retry_headers) if transient else None,
            body=response.text,
        )
