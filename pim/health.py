"""Readiness: the database answers, its schema is at every migration head, Redis answers.

Each check is one round trip (no table scans) under a timeout, all run at once, so a
probe every few seconds costs nothing; a failure is named, never explained with internals
(the probe is unauthenticated).
"""

import asyncio
from collections.abc import Awaitable, Callable
from functools import lru_cache

import redis.asyncio as aioredis
from alembic.script import ScriptDirectory
from sqlalchemy import text

from pim.db import Database
from pim.migrate import SCRIPTS
from pim.settings import Settings

OK = "ok"
Check = Callable[[], Awaitable[str]]


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    """The revisions a migrated database is at: every head of every domain's branch."""
    return frozenset(ScriptDirectory(str(SCRIPTS)).get_heads())


async def database(db: Database) -> str:
    async with db.read() as session:
        await session.execute(text("SELECT 1"))
    return OK


async def migrations(db: Database) -> str:
    async with db.read() as session:
        versions = await session.scalars(text("SELECT version_num FROM alembic_version"))
        applied = frozenset(versions.all())
    return OK if applied == migration_heads() else "not at the latest migrations"


async def redis(url: str) -> str:
    client = aioredis.from_url(url, socket_connect_timeout=1)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return OK


async def key_alive(url: str, key: str) -> str:
    """Whether a key that its owner keeps renewing (an arq worker's health key) is there."""
    client = aioredis.from_url(url, socket_connect_timeout=1)
    try:
        present = await client.exists(key)
    finally:
        await client.aclose()
    return OK if present else "not running"


def checks(settings: Settings, db: Database) -> dict[str, Check]:
    named: dict[str, Check] = {
        "database": lambda: database(db),
        "migrations": lambda: migrations(db),
    }
    if settings.redis_url:
        url = settings.redis_url
        named["redis"] = lambda: redis(url)
    return named


async def _outcome(check: Check, seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            return await check()
    except TimeoutError:
        return "timeout"
    except Exception:
        # Only that it failed: the exception may name hosts or users.
        return "unreachable"


async def readiness(
    settings: Settings, db: Database, extra: dict[str, Check] | None = None
) -> dict[str, str]:
    """Each check's outcome (`extra` ones too): "ok", or why it is not ready."""
    named = {**checks(settings, db), **(extra or {})}
    timeout = settings.health_timeout_seconds
    outcomes = await asyncio.gather(*(_outcome(check, timeout) for check in named.values()))
    return dict(zip(named, outcomes, strict=True))


def failing(outcomes: dict[str, str]) -> list[str]:
    return [name for name, outcome in outcomes.items() if outcome != OK]
