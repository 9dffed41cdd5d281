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


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::1",
     "2002:a9fe:a9fe::", "::127.0.0.1", "::10.0.0.1", "2001:0:4136:e378:8000:63bf:80ff:fffe"],
)  # fmt: skip
def test_ipv6_forms_embedding_a_private_ipv4_are_refused_by_the_embedded_address(
    address: str,
) -> None:
    assert not PUBLIC_ONLY.address_allowed(ipaddress.ip_address(address))


def test_ipv6_forms_embedding_a_public_ipv4_are_judged_by_it() -> None:
    for address in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "::93.184.216.34"):
        assert PUBLIC_ONLY.address_allowed(ipaddress.ip_address(address)), address


@pytest.mark.parametrize(
    ("host", "quad"),
    [("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("127.1", "127.0.0.1"),
     ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("10.1.257", "10.1.1.1"),
     ("134744072", "8.8.8.8"), ("010.010.010.010", "8.8.8.8")],
)  # fmt: skip
def test_numeric_host_forms_are_read_as_their_dotted_quad(host: str, quad: str) -> None:
    assert outbound.numeric_ipv4(host) == quad
    assert outbound.canonical_url(f"https://u:p@{host}:8443/f.csv?x=1") == (
        f"https://u:p@{quad}:8443/f.csv?x=1"
    )


def test_names_and_plain_quads_are_left_as_they_are() -> None:
    for host in ("files.example.com", "93.184.216.34", "1e100.net", "0x.example"):
        assert outbound.numeric_ipv4(host) is None, host
    with pytest.raises(OutboundBlocked, match="numérique invalide"):
        outbound.numeric_ipv4("4294967296")


async def test_saved_urls_are_checked_in_canonical_form() -> None:
    for url in ("https://2130706433/x", "https://[64:ff9b::7f00:1]/x", "https://0177.1/x"):
        with pytest.raises(OutboundBlocked, match="non publique"):
            await outbound.check_url(url, PUBLIC_ONLY)
    assert await outbound.check_url("http://2130706433:9/x", LOOPBACK_ALLOWED) == (
        "http://127.0.0.1:9/x"
    )


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
