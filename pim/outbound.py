"""The outbound guard: every request to an address a user gave goes through here.

Checks happen at connect time, on the addresses the name resolves to right now
(a name that resolved to a public address when it was saved can point at
127.0.0.1 today): every resolved address must be public, unless its network is
explicitly allowed in settings, and the request is sent to the very address that
was checked (the original name still goes in the Host header and TLS SNI). Each
redirect is checked again. Proxies from the environment are ignored.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

from pim.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"https": 443, "http": 80, "sftp": 22, "ftp": 21}


class OutboundBlocked(Exception):
    """The destination is not allowed; the message says why, for the user."""


@dataclass(frozen=True)
class OutboundPolicy:
    allowed_networks: tuple[Network, ...] = ()
    allow_plain_http: bool = False
    schemes: frozenset[str] = field(default_factory=lambda: frozenset({"https", "http"}))

    @classmethod
    def from_settings(cls, settings: Settings) -> "OutboundPolicy":
        return cls(
            allowed_networks=tuple(
                ipaddress.ip_network(n) for n in settings.outbound_allowed_networks
            ),
            allow_plain_http=settings.outbound_allow_http,
        )

    def address_allowed(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed_networks):
            return True
        return address.is_global and not address.is_multicast


async def resolve(host: str, port: int, policy: OutboundPolicy) -> str:
    """The address to connect to, after checking every address `host` resolves to."""
    if not host:
        raise OutboundBlocked("adresse sans nom d'hôte")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundBlocked(f"nom d'hôte introuvable : {host}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [a for a in addresses if not policy.address_allowed(a)]
    if not addresses or refused:
        raise OutboundBlocked(
            f"destination refusée : {host} résout vers une adresse non publique ({refused[0]})"
            if refused
            else f"nom d'hôte introuvable : {host}"
        )
    return str(addresses[0])


def check_scheme(url: httpx.URL, policy: OutboundPolicy) -> None:
    if url.scheme not in policy.schemes:
        raise OutboundBlocked(f"schéma non autorisé : {url.scheme or '(aucun)'}")
    if url.scheme == "http" and not policy.allow_plain_http:
        raise OutboundBlocked("seules les adresses https sont autorisées")


async def _pinned(request: httpx.Request, policy: OutboundPolicy) -> httpx.Request:
    url = request.url
    check_scheme(url, policy)
    port = url.port or DEFAULT_PORTS[url.scheme]
    address = await resolve(url.host, port, policy)
    host = f"[{address}]" if ":" in address else address
    pinned = url.copy_with(host=host.strip("[]"), port=port)
    headers = httpx.Headers(request.headers)
    headers["Host"] = url.netloc.decode()
    extensions = dict(request.extensions)
    if url.scheme == "https":
        extensions["sni_hostname"] = url.host
    return httpx.Request(
        request.method, pinned, headers=headers, content=request.content, extensions=extensions
    )


# Headers that describe the request rather than who sends it: the only ones that
# follow a redirect to another origin (credentials come in many names: Authorization,
# X-Shopify-Access-Token, X-Auth-Token, x-amz-access-token, cookies…).
PORTABLE_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "user-agent",
                              "content-type", "content-length"})  # fmt: skip
BODY_HEADERS = ("content-length", "content-type", "transfer-encoding")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


def _redirected(request: httpx.Request, response: httpx.Response) -> httpx.Request:
    target = httpx.URL(urljoin(str(request.url), response.headers["location"]))
    method = request.method
    content: bytes | None = request.content
    headers = httpx.Headers(request.headers)
    headers.pop("Host", None)
    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
        # A GET has no body: its length and type must not describe the one left behind.
        method, content = "GET", None
        for name in BODY_HEADERS:
            headers.pop(name, None)
    if _origin(target) != _origin(request.url):
        headers = httpx.Headers({k: v for k, v in headers.items() if k in PORTABLE_HEADERS})
    return httpx.Request(method, target, headers=headers, content=content)


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: OutboundPolicy,
    *,
    stream: bool = False,
    same_origin: bool = False,
) -> httpx.Response:
    """Send a request through the guard, following (and checking) redirects ourselves.

    With `stream`, the body is left unread (the caller caps it and closes the response).
    With `same_origin`, a redirect to another origin is not followed: the redirect
    itself is answered (platform calls carry credentials in headers of their own).
    """
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(
            await _pinned(request, policy), follow_redirects=False, stream=stream
        )
        if response.status_code not in REDIRECTS or "location" not in response.headers:
            return response
        following = _redirected(request, response)
        if same_origin and _origin(following.url) != _origin(request.url):
            return response
        await response.aclose()
        request = following
    raise OutboundBlocked("trop de redirections")


def client(timeout: float = 30.0) -> httpx.AsyncClient:
    """An HTTP client for guarded requests: no proxies from the environment."""
    return httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False)
