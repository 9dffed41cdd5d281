"""Automations against real SFTP, FTP and HTTP servers started on loopback by the tests:
each protocol downloads the file through the outbound guard, private destinations are
refused unless allowed, and a run records what happened."""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pim import outbound
from pim.outbound import OutboundPolicy
from pim.remote_files import FetchFailed, FetchLimits, RemoteSource, fetch
from pim.runtime import Runtime
from pim.settings import Settings
from tests.conftest import Key
from tests.jobs_helper import run_jobs
from tests.loopback import serve

CSV = b"EAN;Titre;Prix HT\n3760000000001;Support TV;29,99\n"
LOOPBACK = OutboundPolicy.from_settings(
    Settings(outbound_allowed_networks=["127.0.0.0/8"], outbound_allow_http=True)
)
PUBLIC_ONLY = OutboundPolicy(allow_plain_http=True)
AUTOMATIONS = "/api/v1/imports/automations"
LIMITS = FetchLimits(max_bytes=1024 * 1024, timeout=10)


# ---- the servers ------------------------------------------------------------------------


@dataclass
class SftpServer:
    port: int
    host_key: str
    client_key: str


class SftpAccounts(asyncssh.SSHServer):
    """A password account (user / secret) and a key account (keyuser, `authorized`)."""

    authorized = ""

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (username, password) == ("user", "secret")

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == "keyuser" and key.export_public_key().decode() == self.authorized


async def start_sftp(
    root: Path, host_key: asyncssh.SSHKey, authorized: str, port: int = 0
) -> asyncssh.SSHAcceptor:
    accounts = type("Accounts", (SftpAccounts,), {"authorized": authorized})
    return await asyncssh.create_server(
        accounts, "127.0.0.1", port, server_host_keys=[host_key],
        sftp_factory=lambda channel: asyncssh.SFTPServer(channel, chroot=str(root).encode()),
    )  # fmt: skip


@pytest.fixture
async def sftp_server(tmp_path: Path) -> AsyncIterator[SftpServer]:
    (tmp_path / "exports").mkdir(exist_ok=True)
    (tmp_path / "exports" / "products.csv").write_bytes(CSV)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await start_sftp(tmp_path, host_key, client_key.export_public_key().decode())
    port = server.sockets[0].getsockname()[1]
    try:
        yield SftpServer(
            port, host_key.export_public_key().decode(), client_key.export_private_key().decode()
        )
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def ftp_port(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "exports").mkdir(exist_ok=True)
    (tmp_path / "exports" / "products.csv").write_bytes(CSV)
    authorizer = DummyAuthorizer()
    authorizer.add_user("user", "secret", str(tmp_path), perm="elr")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "banner": "test"})
    server = FTPServer(("127.0.0.1", 0), handler)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False)
        server.close_all()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield int(server.socket.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)


@dataclass
class HttpFiles:
    base: str
    hits: list[str]


async def _file(request: Request) -> Response:
    request.app.state.hits.append(request.url.path)
    if request.headers.get("authorization") != "Basic dXNlcjpzZWNyZXQ=":  # user:secret
        return Response(status_code=401)
    return Response(CSV, media_type="text/csv")


async def _big(request: Request) -> Response:
    return Response(b"x" * (LIMITS.max_bytes + 1), media_type="text/csv")


async def _missing(request: Request) -> Response:
    return Response(status_code=404)


@pytest.fixture
async def http_files() -> AsyncIterator[HttpFiles]:
    app = Starlette(
        routes=[
            Route("/exports/products.csv", _file),
            Route("/big.csv", _big),
            Route("/missing.csv", _missing),
        ]
    )
    app.state.hits = []
    async with serve(app) as base:
        yield HttpFiles(base, app.state.hits)


# ---- fetching -----------------------------------------------------------------------


def remote(kind: str, port: int, **changes: Any) -> RemoteSource:
    """An SFTP or FTP source for the test servers' password user and file."""
    source = RemoteSource(
        kind,
        host="127.0.0.1",
        port=port,
        username="user",
        password="secret",
        path="/exports/products.csv",
    )
    return replace(source, **changes)


async def test_sftp_without_a_host_key_returns_the_key_first_seen(
    sftp_server: SftpServer,
) -> None:
    source = remote("sftp", sftp_server.port)
    fetched = await fetch(source, LOOPBACK, LIMITS)
    assert fetched.data == CSV
    assert fetched.first_host_key == sftp_server.host_key.strip()
    assert source.file_name() == "products.csv"
    pinned = await fetch(replace(source, host_key=fetched.first_host_key), LOOPBACK, LIMITS)
    assert (pinned.data, pinned.first_host_key) == (CSV, None)


async def test_sftp_with_a_private_key_and_a_pinned_host_key(sftp_server: SftpServer) -> None:
    source = RemoteSource(
        "sftp", host="127.0.0.1", port=sftp_server.port, username="keyuser",
        private_key=sftp_server.client_key, host_key=sftp_server.host_key, path="/exports/products.csv",
    )  # fmt: skip
    assert (await fetch(source, LOOPBACK, LIMITS)).data == CSV
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    with pytest.raises(FetchFailed, match="clé d'hôte refusée"):
        await fetch(replace(source, host_key=other), LOOPBACK, LIMITS)


async def test_sftp_errors_are_clear(sftp_server: SftpServer) -> None:
    source = remote("sftp", sftp_server.port, path="/exports/none.csv")
    with pytest.raises(
        FetchFailed, match=r"fichier introuvable sur le serveur SFTP : /exports/none\.csv"
    ):
        await fetch(source, LOOPBACK, LIMITS)
    with pytest.raises(FetchFailed, match="téléchargement impossible"):
        await fetch(
            replace(source, password="wrong", path="/exports/products.csv"), LOOPBACK, LIMITS
        )
    with pytest.raises(FetchFailed, match="trop volumineux"):
        await fetch(replace(source, path="/exports/products.csv"), LOOPBACK, FetchLimits(10, 10))


async def test_ftp_with_a_password(ftp_port: int) -> None:
    source = remote("ftp", ftp_port)
    assert (await fetch(source, LOOPBACK, LIMITS)).data == CSV
    with pytest.raises(FetchFailed, match="fichier introuvable sur le serveur FTP"):
        await fetch(replace(source, path="/exports/none.csv"), LOOPBACK, LIMITS)
    with pytest.raises(FetchFailed, match="trop volumineux"):
        await fetch(source, LOOPBACK, FetchLimits(10, 10))
    with pytest.raises(FetchFailed, match="téléchargement impossible"):
        await fetch(replace(source, password="wrong"), LOOPBACK, LIMITS)


async def test_http_with_basic_auth(http_files: HttpFiles) -> None:
    source = RemoteSource(
        "http", url=f"{http_files.base}/exports/products.csv", username="user", password="secret"
    )
    assert (await fetch(source, LOOPBACK, LIMITS)).data == CSV
    assert source.file_name() == "products.csv"
    with pytest.raises(FetchFailed, match="répondu 401"):
        await fetch(replace(source, password="wrong"), LOOPBACK, LIMITS)
    with pytest.raises(FetchFailed, match="répondu 404"):
        await fetch(replace(source, url=f"{http_files.base}/missing.csv"), LOOPBACK, LIMITS)
    with pytest.raises(FetchFailed, match="trop volumineux"):
        await fetch(replace(source, url=f"{http_files.base}/big.csv"), LOOPBACK, LIMITS)


async def test_https_sources_need_an_https_url(http_files: HttpFiles) -> None:
    source = RemoteSource("https", url=f"{http_files.base}/exports/products.csv")
    with pytest.raises(FetchFailed, match="https"):
        await fetch(source, LOOPBACK, LIMITS)
    assert http_files.hits == []


async def test_every_protocol_refuses_a_private_destination(
    sftp_server: SftpServer, ftp_port: int, http_files: HttpFiles
) -> None:
    sources = [
        remote("sftp", sftp_server.port, host="localhost"),
        remote("ftp", ftp_port, host="localhost"),
        RemoteSource(
            "http",
            url=f"{http_files.base.replace('127.0.0.1', 'localhost')}/exports/products.csv",
            username="user",
            password="secret",
        ),
    ]
    for source in sources:
        with pytest.raises(FetchFailed, match="non publique"):
            await fetch(source, PUBLIC_ONLY, LIMITS)
    assert http_files.hits == []


async def test_the_guard_resolves_before_connecting(
    monkeypatch: pytest.MonkeyPatch, ftp_port: int
) -> None:
    """The connection goes to the address the guard checked, not to a second lookup."""
    checked: list[str] = []
    real = outbound.resolve

    async def spy(host: str, port: int, policy: OutboundPolicy) -> str:
        address = await real(host, port, policy)
        checked.append(address)
        return address

    monkeypatch.setattr(outbound, "resolve", spy)
    source = remote("ftp", ftp_port, host="localhost")
    assert (await fetch(source, LOOPBACK, LIMITS)).data == CSV
    assert checked in (["127.0.0.1"], ["::1"])


async def test_a_slow_server_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets; returns when the client hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        source = RemoteSource("ftp", host="127.0.0.1", port=port, path="/a.csv")
        with pytest.raises(FetchFailed, match="délai dépassé"):
            await fetch(source, LOOPBACK, FetchLimits(LIMITS.max_bytes, 0.2))
    finally:
        server.close()


# ---- through the API and the run job ---------------------------------------------------


@pytest.mark.usefixtures("loopback_allowed")
async def test_runs_over_sftp_and_ftp_use_the_stored_credentials(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, sftp_server: SftpServer, ftp_port: int
) -> None:
    sources = [
        {"type": "sftp", "host": "127.0.0.1", "port": sftp_server.port, "username": "keyuser",
         "private_key": sftp_server.client_key, "host_key": sftp_server.host_key,
         "path": "/exports/products.csv"},
        {"type": "ftp", "host": "127.0.0.1", "port": ftp_port, "username": "user",
         "password": "secret", "path": "/exports/products.csv"},
    ]  # fmt: skip
    for source in sources:
        body = {
            "name": f"Supplier over {source['type']}",
            "schedule": "0 2 * * *",
            "file_source": source,
        }
        created = (await client.post(AUTOMATIONS, json=body, headers=key.bearer)).json()
        await client.post(f"{AUTOMATIONS}/{created['id']}/run", headers=key.bearer)
        await run_jobs(runtime)
        got = (await client.get(f"{AUTOMATIONS}/{created['id']}", headers=key.bearer)).json()
        assert (got["last_status"], got["last_error"]) == ("started", None)
        assert got["last_import_job_id"] is not None


@pytest.mark.usefixtures("loopback_allowed")
async def test_a_run_trusts_the_first_sftp_host_key_and_refuses_a_changed_one(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, tmp_path: Path
) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "products.csv").write_bytes(CSV)
    first_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await start_sftp(tmp_path, first_key, "")
    port = server.sockets[0].getsockname()[1]
    source = {"type": "sftp", "host": "127.0.0.1", "port": port, "username": "user",
              "password": "secret", "path": "/exports/products.csv"}  # fmt: skip
    body = {"name": "TOFU", "schedule": "0 2 * * *", "file_source": source}
    created = (await client.post(AUTOMATIONS, json=body, headers=key.bearer)).json()
    url = f"{AUTOMATIONS}/{created['id']}"
    assert (await client.get(url, headers=key.bearer)).json()["file_source"]["host_key"] is None
    try:
        await client.post(f"{url}/run", headers=key.bearer)
        await run_jobs(runtime)
        got = (await client.get(url, headers=key.bearer)).json()
        assert (got["last_status"], got["last_error"]) == ("started", None)
        recorded = first_key.export_public_key().decode().strip()
        assert got["file_source"]["host_key"] == recorded
    finally:
        server.close()
        await server.wait_closed()
    # The same address now answers with another key: a different server, or an impostor.
    server = await start_sftp(tmp_path, asyncssh.generate_private_key("ssh-ed25519"), "", port)
    try:
        await client.post(f"{url}/run", headers=key.bearer)
        await run_jobs(runtime)
        got = (await client.get(url, headers=key.bearer)).json()
        assert got["last_status"] == "failed"
        assert got["last_error"].startswith("clé d'hôte refusée")
        assert got["file_source"]["host_key"] == recorded
        jobs = await client.get(
            f"/api/v1/imports/jobs?automation_id={created['id']}", headers=key.bearer
        )
        assert jobs.json()["meta"]["total"] == 1
    finally:
        server.close()
        await server.wait_closed()
    # Pointing the automation at another server forgets the key held for the old one.
    same = {"file_source": {"type": "sftp", "host": "127.0.0.1", "path": "/p.csv"}}
    kept = await client.patch(url, json=same, headers=key.bearer)
    assert kept.json()["file_source"]["host_key"] == recorded
    moved = {"file_source": {"type": "sftp", "port": port + 1}}
    forgotten = await client.patch(url, json=moved, headers=key.bearer)
    assert forgotten.json()["file_source"]["host_key"] is None
