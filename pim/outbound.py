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
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from pim.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"https": 443, "http": 80, "sftp": 22, "ftp": 21}
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (well-known and
# local-use) and IPv4-compatible addresses. Such an address reaches the IPv4 one.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# The numeric host forms inet_aton accepts besides the dotted quad: 2130706433,
# 0x7f000001, 127.1, 0177.0.0.1. Resolvers and HTTP stacks disagree about them.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)


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
        if any(address in network for network in self.allowed_networks):
            return True
        if (
            isinstance(address, ipaddress.IPv6Address)
            and (embedded := embedded_ipv4(address)) is not None
        ):
            return self.address_allowed(embedded)
        return address.is_global and not address.is_multicast


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches: IPv4-mapped, NAT64, 6to4, Teredo's client,
    IPv4-compatible (::a.b.c.d). It is the one to check: 64:ff9b::127.0.0.1 is loopback."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64) or 1 < int(address) < 2**32:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def numeric_ipv4(host: str) -> str | None:
    """The dotted quad a numeric host form stands for, None for a name or another form.

    `127.1` is 127.0.0.1 and `0177.0.0.1` too (octal), as inet_aton reads them: the
    last part fills the remaining bytes, a leading 0 is octal, 0x hexadecimal.
    """
    if not _NUMERIC_HOST.match(host) or (host.count(".") == 3 and not _odd_parts(host)):
        return None
    parts = [_number(p) for p in host.rstrip(".").split(".")]
    *head, last = parts
    if any(p > 255 for p in head) or last >= 256 ** (4 - len(head)):
        raise OutboundBlocked(f"adresse numérique invalide : {host}")
    value = last
    for index, part in enumerate(head):
        value += part << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))


def _odd_parts(dotted: str) -> bool:
    """Whether a four-part address has a part written other than in plain decimal."""
    return any(
        p.lower().startswith("0x") or (len(p) > 1 and p.startswith("0"))
        for p in dotted.rstrip(".").split(".")
    )


def _number(part: str) -> int:
    if part.lower().startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        try:
            return int(part, 8)
        except ValueError as exc:
            raise OutboundBlocked(f"adresse numérique invalide : {part}") from exc
    return int(part)


def canonical_host(host: str) -> str:
    """The host as it will be stored and connected to: numeric IPv4 forms as dotted quads,
    IPv6 without brackets, names lower-cased."""
    name = host.strip("[]").lower()
    return numeric_ipv4(name) or name


def literal_address(host: str) -> IPAddress | None:
    """The address `host` names without any lookup (localhost included), or None."""
    name = canonical_host(host)
    if name == "localhost" or name.endswith(".localhost"):
        name = "127.0.0.1"
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def check_literal(host: str, policy: OutboundPolicy) -> str:
    """The canonical host, refused when it names a non-public address outright."""
    if not host:
        raise OutboundBlocked("adresse sans nom d'hôte")
    address = literal_address(host)
    if address is not None and not policy.address_allowed(address):
        raise OutboundBlocked(f"adresse non publique refusée : {address}")
    return canonical_host(host)


def canonical_url(url: str) -> str:
    """The URL with its host in canonical form (see canonical_host). Read with urllib:
    httpx refuses some numeric forms (0177.0.0.1) that resolvers accept."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise OutboundBlocked("URL invalide") from exc
    canonical = canonical_host(host)
    if canonical == host:
        return url
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + canonical + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def check_url(url: str, policy: OutboundPolicy) -> str:
    """A URL a user saves (connector, webhook), as it will be stored: scheme allowed, host
    in canonical form, and every address it names or resolves to right now allowed (checked
    again at each connection, for names that change)."""
    url = canonical_url(url)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise OutboundBlocked("URL invalide") from exc
    check_scheme(parsed, policy)
    host = check_literal(parsed.host, policy)
    await resolve(host, parsed.port or DEFAULT_PORTS[parsed.scheme], policy)
    return url


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
