"""Downloading a supplier's file from SFTP, FTP or HTTP(S), through the outbound guard.

Every protocol resolves the host with `pim.outbound.resolve` first and connects to
the very address that was checked, so a name that points at a private address
today is refused even if it was public when the automation was saved. Downloads
stop at a size cap; every failure becomes a `FetchFailed` whose message is shown
to the user as the automation's last error.

An SFTP server must present the host key the automation holds. An automation saved
without one trusts the first key seen (trust on first use): `fetch` returns it, the
caller records it, and every later run refuses any other key.

asyncssh and aioftp are imported by the functions that use them: most processes (the
`pim` command, a worker that never fetches) would load them for nothing.
"""

import asyncio
import base64
import posixpath
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

from pim import outbound
from pim.outbound import DEFAULT_PORTS, OutboundBlocked, OutboundPolicy

CHUNK = 64 * 1024


class FetchFailed(Exception):
    """The file could not be downloaded; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class RemoteSource:
    type: str  # sftp | ftp | http | https
    host: str | None = None
    port: int | None = None
    username: str | None = None
    path: str | None = None
    url: str | None = None
    password: str | None = None
    private_key: str | None = None
    # An OpenSSH public key line: the SFTP server must present this key (None: the
    # first key seen is returned, to be recorded).
    host_key: str | None = None

    def file_name(self) -> str:
        path = urlsplit(self.url).path if self.url else self.path or ""
        return posixpath.basename(unquote(path)) or "download"


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    # The key an SFTP server presented to a source that held none: to be recorded.
    first_host_key: str | None = None


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int
    timeout: float


def check_private_key(text: str) -> bool:
    """Whether `text` is a private key asyncssh can use (unencrypted: nobody types a passphrase)."""
    import asyncssh

    try:
        asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, ValueError):
        return False
    return True


def check_public_key(text: str) -> bool:
    import asyncssh

    try:
        asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError):
        return False
    return True


async def fetch(source: RemoteSource, policy: OutboundPolicy, limits: FetchLimits) -> Fetched:
    """The whole file's bytes (and the SFTP host key first seen), or FetchFailed."""
    fetcher = {"sftp": _sftp, "ftp": _ftp, "http": _http, "https": _http}[source.type]
    try:
        async with asyncio.timeout(limits.timeout):
            return await fetcher(source, policy, limits.max_bytes)
    except FetchFailed:
        raise
    except OutboundBlocked as exc:
        raise FetchFailed(str(exc)) from exc
    except TimeoutError as exc:
        raise FetchFailed(f"délai dépassé ({limits.timeout:g} s) pour {_where(source)}") from exc
    except (OSError, httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _unreachable(source, exc) from exc


def _unreachable(source: RemoteSource, exc: Exception) -> FetchFailed:
    return FetchFailed(f"téléchargement impossible depuis {_where(source)} : {exc}")


def _where(source: RemoteSource) -> str:
    return source.url or f"{source.type}://{source.host}{source.path or ''}"


def _too_big(max_bytes: int) -> FetchFailed:
    return FetchFailed(f"fichier trop volumineux (plus de {max_bytes} octets)")


async def _checked_address(source: RemoteSource, policy: OutboundPolicy) -> tuple[str, int]:
    port = source.port or DEFAULT_PORTS[source.type]
    return await outbound.resolve(source.host or "", port, policy), port


async def _sftp(source: RemoteSource, policy: OutboundPolicy, max_bytes: int) -> Fetched:
    import asyncssh

    address, port = await _checked_address(source, policy)
    try:
        return await _sftp_download(source, address, port, max_bytes)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise FetchFailed(
            f"clé d'hôte refusée : {_where(source)} ne présente pas la clé enregistrée "
            "pour cette automatisation (serveur changé ou usurpé ?)"
        ) from exc
    except asyncssh.Error as exc:
        raise _unreachable(source, exc) from exc


async def _sftp_download(source: RemoteSource, address: str, port: int, max_bytes: int) -> Fetched:
    import asyncssh

    keys = [asyncssh.import_private_key(source.private_key)] if source.private_key else None
    # Nothing from this machine's ~/.ssh (keys, agent, config, known_hosts) may be used.
    # Without a held key, any key is accepted this once and returned to be recorded.
    trusted: tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]] | None = (
        ([asyncssh.import_public_key(source.host_key)], [], []) if source.host_key else None
    )
    async with (
        asyncssh.connect(
            address,
            port,
            username=source.username,
            password=source.password,
            client_keys=keys,
            agent_path=None,
            config=None,
            known_hosts=trusted,
            preferred_auth="publickey,password" if keys else "password,keyboard-interactive",
        ) as connection,
        connection.start_sftp_client() as sftp,
    ):
        seen = connection.get_server_host_key()
        first_key = None if trusted or seen is None else seen.export_public_key().decode().strip()
        path = source.path or ""
        try:
            size = (await sftp.stat(path)).size
        except asyncssh.SFTPNoSuchFile as exc:
            raise FetchFailed(f"fichier introuvable sur le serveur SFTP : {path}") from exc
        if size is not None and size > max_bytes:
            raise _too_big(max_bytes)
        async with sftp.open(path, "rb") as remote:
            data: bytes = await remote.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_big(max_bytes)
    return Fetched(data, first_key)


async def _ftp(source: RemoteSource, policy: OutboundPolicy, max_bytes: int) -> Fetched:
    import aioftp

    address, port = await _checked_address(source, policy)
    # A PASV reply's address is ignored (aioftp's default): data connections go to the
    # checked control address, never to one the server names.
    client = aioftp.Client()
    try:
        await client.connect(address, port)
        await client.login(source.username or "anonymous", source.password or "")
        path = source.path or ""
        try:
            stream = await client.download_stream(path)
        except aioftp.StatusCodeError as exc:
            raise FetchFailed(f"fichier introuvable sur le serveur FTP : {path}") from exc
        data = bytearray()
        try:
            async for block in stream.iter_by_block(CHUNK):
                data += block
                if len(data) > max_bytes:
                    raise _too_big(max_bytes)
        finally:
            stream.close()
        await stream.finish()
        return Fetched(bytes(data))
    except aioftp.AIOFTPException as exc:
        raise _unreachable(source, exc) from exc
    finally:
        client.close()


async def _http(source: RemoteSource, policy: OutboundPolicy, max_bytes: int) -> Fetched:
    url = httpx.URL(source.url or "")
    if source.type == "https" and url.scheme != "https":
        raise FetchFailed("une source https exige une URL https://")
    headers = {}
    if source.username or source.password:
        # Basic auth as a header, which the guard drops on a redirect to another host.
        pair = f"{source.username or ''}:{source.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    async with outbound.client() as http:
        request = httpx.Request("GET", url, headers=headers)
        # Streamed: the body is read here under the cap, so a huge file never fills memory.
        response = await outbound.send(http, request, policy, stream=True)
        try:
            if response.status_code != 200:
                raise FetchFailed(f"le serveur a répondu {response.status_code} pour {url}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(max_bytes)
            data = bytearray()
            async for block in response.aiter_bytes(CHUNK):
                data += block
                if len(data) > max_bytes:
                    raise _too_big(max_bytes)
            return Fetched(bytes(data))
        finally:
            await response.aclose()
