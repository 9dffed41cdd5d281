"""Fixtures: the app on both backends (real PostgreSQL + Redis, and the embedded SQLite
default), an HTTP client, factories for accounts and keys, and loopback servers the
outbound guard lets the code under test reach.

Every test builds its own account, so tests never see each other's rows; that is
tenancy at work, and it lets the database be migrated once per run.
"""

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine.url import make_url

from pim import ratelimit
from pim.auth import SCOPES, Caller
from pim.migrate import upgrade_async
from pim.runtime import Runtime
from pim.settings import Settings
from resolvers import keys
from service.api import create_app
from service.runtime import build_runtime
from tests.openapi_check import response_hook
from tests.webhook_receiver import Receiver, receiving

PG_URL = os.environ.get(
    "PIM_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/pim_test"
)
REDIS_URL = os.environ.get("PIM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ALL_SCOPES = sorted(SCOPES)


async def _recreate_pg_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username,
        password=parsed.password, database="postgres",
    )  # fmt: skip
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp(f"data-{backend}")
    if backend == "postgres":
        await _recreate_pg_database(PG_URL)
        result = Settings(database_url=PG_URL, redis_url=REDIS_URL, data_dir=data_dir)
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
    else:
        result = Settings(data_dir=Path(data_dir))
    await upgrade_async(result)
    return result


@pytest.fixture(scope="session")
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = build_runtime(settings)
    yield rt
    await rt.close()


@pytest.fixture(scope="session")
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    hooks = {"response": [response_hook(app)]}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks=hooks
    ) as http:
        yield http


@dataclass(frozen=True)
class Key:
    plain: str
    account: str
    account_id: uuid.UUID
    key_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.plain}

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.plain}"}

    def caller(self, *scopes: str) -> Caller:
        """The caller this key stands for, with the given scopes, for calling resolvers."""
        return Caller(
            account_id=self.account_id, account_name=self.account, key_id=self.key_id,
            key_name="test", scopes=frozenset(scopes or ALL_SCOPES),
        )  # fmt: skip


MakeKey = Callable[..., Awaitable[Key]]


class _HeldClock:
    """The rate limiter's clock held still, a window ahead of now. Its windows are fixed
    minutes, so a test counting a key's requests would see the count start over if a
    minute turned between two of them; a window ahead, Redis (which expires a window's
    counter by its own clock) keeps the counter for a minute at least."""

    def __init__(self) -> None:
        self._at = time.time() + ratelimit.WINDOW_SECONDS

    def time(self) -> float:
        return self._at


@pytest.fixture
def make_key(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> MakeKey:
    """A key with the given scopes, in a new account unless one is named. Given a rate
    limit, the limiter's clock is held still for the rest of the test."""

    async def factory(
        scopes: list[str] | None = None,
        *,
        account: str | None = None,
        name: str = "ERP Sync Key",
        rate_limit: int | None = None,
    ) -> Key:
        if rate_limit is not None:
            monkeypatch.setattr(ratelimit, "time", _HeldClock())
        account_name = account or f"acct-{uuid.uuid4().hex[:12]}"
        async with runtime.db.transaction() as session:
            acct = await keys.get_or_create_account(session, account_name)
            created = await keys.create_key(
                session, account=acct, name=name,
                scopes=ALL_SCOPES if scopes is None else scopes, rate_limit_per_minute=rate_limit,
            )  # fmt: skip
        return Key(
            plain=created.plain, account=account_name, account_id=acct.id, key_id=created.key.id
        )

    return factory


@pytest.fixture
async def key(make_key: MakeKey) -> Key:
    return await make_key()


@pytest.fixture
def loopback_allowed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the outbound guard reach the test servers on loopback over http (the guard
    refuses loopback by default; the arq worker of run_jobs is built from these same
    settings)."""
    monkeypatch.setattr(settings, "outbound_allowed_networks", ["127.0.0.0/8"])
    monkeypatch.setattr(settings, "outbound_allow_http", True)


@pytest.fixture
async def receiver(loopback_allowed: None) -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback that the outbound guard lets deliveries reach."""
    async with receiving() as r:
        yield r


async def gql(
    client: httpx.AsyncClient, query: str, key: Key | None = None, **variables: Any
) -> dict[str, Any]:
    headers = key.headers if key else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
