"""The outbound guard: private destinations refused, redirects re-checked, allowed networks."""

import ipaddress

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from pim import outbound
from pim.outbound import OutboundBlocked, OutboundPolicy
from tests.loopback import serve

LOOPBACK_ALLOWED = OutboundPolicy(
    allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),), allow_plain_http=True
)
PUBLIC_ONLY = OutboundPolicy(allow_plain_http=True)


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"host": request.headers["host"], "path": request.url.path})


async def to_metadata(_request: Request) -> RedirectResponse:
    return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)


async def to_echo(_request: Request) -> RedirectResponse:
    return RedirectResponse("/echo", status_code=307)


APP = Starlette(
    routes=[Route("/echo", echo), Route("/metadata", to_metadata), Route("/hop", to_echo)]
)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.8", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not PUBLIC_ONLY.address_allowed(ipaddress.ip_address(address))


def test_public_and_explicitly_allowed_addresses_pass() -> None:
    assert PUBLIC_ONLY.address_allowed(ipaddress.ip_address("93.184.216.34"))
    assert LOOPBACK_ALLOWED.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert LOOPBACK_ALLOWED.address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not LOOPBACK_ALLOWED.address_allowed(ipaddress.ip_address("169.254.169.254"))


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    async with serve(APP) as base, outbound.client() as http:
        url = base.replace("127.0.0.1", "localhost") + "/echo"
        with pytest.raises(OutboundBlocked, match="non publique"):
            await outbound.send(http, httpx.Request("GET", url), PUBLIC_ONLY)


async def test_allowed_network_is_reached_through_the_checked_address() -> None:
    async with serve(APP) as base, outbound.client() as http:
        url = base.replace("127.0.0.1", "localhost") + "/echo"
        response = await outbound.send(http, httpx.Request("GET", url), LOOPBACK_ALLOWED)
        assert response.status_code == 200
        # Sent to the checked IP, with the name the user gave in the Host header.
        assert response.json()["host"].startswith("localhost:")


async def test_redirects_are_followed_and_checked_again() -> None:
    async with serve(APP) as base, outbound.client() as http:
        ok = await outbound.send(http, httpx.Request("GET", f"{base}/hop"), LOOPBACK_ALLOWED)
        assert ok.json()["path"] == "/echo"
        with pytest.raises(OutboundBlocked, match=r"169\.254\.169\.254"):
            await outbound.send(http, httpx.Request("GET", f"{base}/metadata"), LOOPBACK_ALLOWED)


async def test_plain_http_and_other_schemes_need_permission() -> None:
    https_only = OutboundPolicy(allowed_networks=LOOPBACK_ALLOWED.allowed_networks)
    async with outbound.client() as http:
        with pytest.raises(OutboundBlocked, match="https"):
            await outbound.send(http, httpx.Request("GET", "http://127.0.0.1:9/"), https_only)
        with pytest.raises(OutboundBlocked, match="schéma"):
            await outbound.send(http, httpx.Request("GET", "file:///etc/passwd"), LOOPBACK_ALLOWED)
