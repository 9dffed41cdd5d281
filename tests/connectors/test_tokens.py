"""Access tokens are fetched once for the requests that need one at the same time,
and renewed once when they are refused, however many requests were refused together
and in whatever order their refusals come back."""

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.http import PlatformHttp
from connectors.tokens import CachedToken, ClientCredentials, bearer
from pim import outbound
from tests.connectors.helpers import LOOPBACK
from tests.loopback import serve


def counted() -> tuple[list[str], CachedToken]:
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        await asyncio.sleep(0)  # a token endpoint answers later
        issued.append(f"t{len(issued) + 1}")
        return issued[-1], 3600.0

    return issued, CachedToken(fetch)


async def test_requests_sent_at_once_share_one_token() -> None:
    issued, token = counted()
    sent = await asyncio.gather(*(bearer(token)(None) for _ in range(5)))
    assert sent == [{"Authorization": "Bearer t1"}] * 5 and issued == ["t1"]


async def test_a_token_refused_to_several_requests_is_renewed_once() -> None:
    issued, token = counted()
    auth = bearer(token)
    sent = [await auth(None) for _ in range(3)]
    renewed = await asyncio.gather(*(auth(refused) for refused in sent))
    assert renewed == [{"Authorization": "Bearer t2"}] * 3 and issued == ["t1", "t2"]


async def test_a_refusal_that_comes_back_after_the_renewal_does_not_renew_again() -> None:
    # One auth for every request of an adapter, as Magento, Medusa and Saleor keep theirs:
    # the second request, sent with t1, is refused after the first has renewed it.
    issued, token = counted()
    auth = bearer(token)
    first, second = await auth(None), await auth(None)
    assert await auth(first) == {"Authorization": "Bearer t2"}
    assert await auth(second) == {"Authorization": "Bearer t2"}
    assert issued == ["t1", "t2"]
    # t2 refused in turn is renewed.
    assert await auth(await auth(None)) == {"Authorization": "Bearer t3"}


async def test_a_platform_handing_out_the_same_token_again_is_asked_once_a_refusal() -> None:
    fetches = 0

    async def fetch() -> tuple[str, float]:
        nonlocal fetches
        fetches += 1
        return "same", 3600.0

    auth = bearer(CachedToken(fetch))
    sent = [await auth(None) for _ in range(3)]
    for refused in sent:
        assert await auth(refused) == {"Authorization": "Bearer same"}
    assert fetches == 2


def expiring_platform() -> tuple[list[str], Starlette]:
    """A token endpoint (client credentials) and a resource that takes only the newest
    token, as a platform does once the one before has expired."""
    issued: list[str] = []

    async def token(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "client_credentials" or form.get("client_secret") != "s":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued.append(f"t{len(issued) + 1}")
        return JSONResponse({"access_token": issued[-1], "expires_in": 1800})

    async def resource(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {issued[-1]}":
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        await asyncio.sleep(0.01)
        return JSONResponse({"ok": True})

    return issued, Starlette(
        routes=[Route("/token", token, methods=["POST"]), Route("/items", resource)]
    )


async def test_client_credentials_refused_to_concurrent_requests_are_renewed_once() -> None:
    issued, app = expiring_platform()
    async with serve(app) as base, outbound.client() as client:
        http = PlatformHttp(client, LOOPBACK)
        credentials = ClientCredentials(http, f"{base}/token", "c", "s", basic_auth=False)
        await http.request("GET", f"{base}/items", auth=credentials.headers)
        issued.append("elsewhere")  # the platform expires t1 (another client renewed)
        answers = await asyncio.gather(
            *(http.request("GET", f"{base}/items", auth=credentials.headers) for _ in range(8))
        )
    assert [a.json() for a in answers] == [{"ok": True}] * 8
    assert issued == ["t1", "elsewhere", "t3"]  # one renewal for the eight refusals
