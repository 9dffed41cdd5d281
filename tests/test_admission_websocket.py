"""Websockets are admitted like HTTP requests: a connection_init without a valid key is
closed (4401, or 4403 when the key is refused), a socket that never sends one is closed,
and an open subscription ends when its key is revoked. Over a real socket (uvicorn on a
loopback port, graphql-transport-ws)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from fastapi import FastAPI
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection

from models import ApiKey
from pim.runtime import Runtime
from pim.settings import Settings
from pim.timeutil import utcnow
from resolvers import imports, keys
from resolvers.import_storage import InMemory
from service.api import create_app
from tests.conftest import Key, MakeKey
from tests.import_files import csv_bytes, rows
from tests.jobs_helper import run_jobs
from tests.loopback import serve

PROGRESS = """subscription($id: ID!) {
  importJobProgress(id: $id) { id status processedRows }
}"""


@asynccontextmanager
async def socket_to(app: FastAPI) -> AsyncIterator[ClientConnection]:
    async with (
        serve(app) as url,
        websockets.connect(
            url.replace("http", "ws", 1) + "/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws,
    ):  # fmt: skip
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
    return message


async def closed_with(ws: ClientConnection) -> tuple[int | None, list[dict[str, Any]]]:
    """The close code the server sent, and the messages received before it."""
    received = []
    try:
        while True:
            received.append(await receive(ws))
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, received


async def init(ws: ClientConnection, payload: dict[str, str]) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))


async def paused_job(runtime: Runtime, key: Key) -> str:
    """An import that stays paused: its progress stream stays open."""
    async with runtime.db.transaction() as session:
        job = await imports.create_job(
            session, key.caller(), file_name="c.csv", file=InMemory(csv_bytes(rows(3)))
        )
        await imports.control_job(session, key.caller(), job_id=job.id, action="pause")
    await run_jobs(runtime)  # the job sees the pause and stops
    return str(job.id)


async def watch_paused_job(ws: ClientConnection, payload: dict[str, str], job_id: str) -> None:
    """Acknowledged, subscribed, and told the job's state: the stream is open."""
    await init(ws, payload)
    assert (await receive(ws))["type"] == "connection_ack"
    subscribe = {"query": PROGRESS, "variables": {"id": job_id}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
    first = await receive(ws)
    assert first["payload"]["data"]["importJobProgress"]["status"] == "paused"


@pytest.mark.parametrize(
    "payload",
    [{}, {"X-API-Key": "pm_live_nope"}, {"Authorization": "Bearer pm_live_nope"}],
)
async def test_a_connection_init_without_a_valid_key_is_closed_4401_not_acknowledged(
    app: FastAPI, payload: dict[str, str]
) -> None:
    async with socket_to(app) as ws:
        await init(ws, payload)
        code, received = await closed_with(ws)
    assert code == 4401 and received == []


async def test_a_connection_init_with_a_rate_limited_key_is_closed_4403(
    app: FastAPI, make_key: MakeKey
) -> None:
    key = await make_key(rate_limit=1)
    async with socket_to(app) as ws:
        await init(ws, key.headers)
        assert (await receive(ws))["type"] == "connection_ack"
    async with socket_to(app) as ws:
        await init(ws, key.headers)
        code, received = await closed_with(ws)
    assert code == 4403 and received == []


async def test_a_message_nested_100000_deep_closes_the_socket_4400(app: FastAPI, key: Key) -> None:
    async with socket_to(app) as ws:
        await init(ws, key.headers)
        assert (await receive(ws))["type"] == "connection_ack"
        await ws.send('{"type": "ping", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}")
        code, received = await closed_with(ws)
    assert code == 4400 and received == []


async def test_a_socket_that_sends_no_connection_init_is_closed_after_the_init_timeout(
    settings: Settings, runtime: Runtime
) -> None:
    impatient = create_app(settings.model_copy(update={"ws_init_timeout_seconds": 0.3}), runtime)
    async with socket_to(impatient) as ws:
        code, received = await asyncio.wait_for(closed_with(ws), timeout=10)
    assert code == 4408 and received == []


@pytest.mark.parametrize("where", ["this process", "elsewhere"])
async def test_an_open_subscription_ends_when_its_key_is_revoked(
    app: FastAPI, runtime: Runtime, make_key: MakeKey, monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(runtime.settings, "ws_key_check_seconds", 0.1)
    key = await make_key()
    job_id = await paused_job(runtime, key)
    async with socket_to(app) as ws:
        await watch_paused_job(ws, key.headers, job_id)
        async with runtime.db.transaction() as session:
            if where == "this process":
                await keys.revoke_key(session, key_id=key.key_id)
            else:  # the CLI, another API worker: only the row changes
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key.key_id).values(revoked_at=utcnow())
                )
        later = time.monotonic() + keys.CALLER_TTL_SECONDS
        monkeypatch.setattr(keys.recent_callers, "clock", lambda: later)
        code, received = await asyncio.wait_for(closed_with(ws), timeout=10)
    assert code == 4401
    assert all(message.get("type") != "next" for message in received)


async def test_a_subscription_with_a_valid_key_keeps_streaming_past_the_key_checks(
    app: FastAPI, runtime: Runtime, key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.settings, "ws_key_check_seconds", 0.05)
    job_id = await paused_job(runtime, key)
    async with socket_to(app) as ws:
        await watch_paused_job(ws, key.bearer, job_id)
        await asyncio.sleep(0.5)  # several key checks
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws))["type"] == "pong"
        assert ws.close_code is None
