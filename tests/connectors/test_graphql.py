"""Connectors through GraphQL: the same operations, typed errors, and sync progress
watched over a real websocket (graphql-transport-ws, key in connection_init)."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from pim.runtime import Runtime
from tests.conftest import MakeKey, gql
from tests.connectors.conftest import Store, make_products
from tests.jobs_helper import run_jobs
from tests.loopback import serve

CREATE = """
mutation Create($input: ConnectorInput!) {
  createConnector(input: $input) {
    connector { id name platform status credentialFields syncStats { productsSynced productsPending lastError } }
    errors { field message code }
  }
}"""

READ = """
query Read($id: ID!) {
  connector(id: $id) { id name lastSyncAt syncStats { productsSynced productsPending } }
  connectors { totalCount nodes { id platform } }
}"""

PUSH = """
mutation Push($id: ID!, $ids: [ID!]) {
  pushProducts(connectorId: $id, productIds: $ids) {
    job { id kind status } productsQueued errors { field code }
  }
}"""

JOB = """query Job($id: ID!) { syncJob(id: $id) { id status total succeeded failed skipped } }"""

TEST = """mutation T($id: ID!) { testConnector(id: $id) { result { success platform message } errors { code } } }"""

PROGRESS = """subscription P($id: ID!) { syncJobProgress(id: $id) { id status processed total } }"""


def _input(store: Store) -> dict[str, Any]:
    fields = store.fields()
    return {
        "name": fields["name"], "platform": fields["platform"], "baseUrl": fields["base_url"],
        "credentials": fields["credentials"],
    }  # fmt: skip


async def test_connector_lifecycle_through_graphql(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    ids = await make_products(open_runtime, key, 3)
    created = (await gql(open_client, CREATE, key, input=_input(woo)))["data"]["createConnector"]
    assert created["errors"] == []
    connector = created["connector"]
    assert connector["credentialFields"] == ["consumer_key", "consumer_secret"]
    assert connector["syncStats"] == {"productsSynced": 0, "productsPending": 3, "lastError": None}

    tested = (await gql(open_client, TEST, key, id=connector["id"]))["data"]["testConnector"]
    assert tested["result"]["success"] is True

    pushed = (await gql(open_client, PUSH, key, id=connector["id"], ids=[str(ids[0])]))["data"]
    assert pushed["pushProducts"]["productsQueued"] == 1
    assert pushed["pushProducts"]["job"]["status"] == "queued"
    await run_jobs(open_runtime, queue="connectors")
    job = (await gql(open_client, JOB, key, id=pushed["pushProducts"]["job"]["id"]))["data"]
    assert job["syncJob"]["status"] == "completed" and job["syncJob"]["succeeded"] == 1

    cancel = "mutation C($id: ID!) { cancelSyncJob(id: $id) { job { id } errors { code } } }"
    finished = (await gql(open_client, cancel, key, id=job["syncJob"]["id"]))["data"]
    assert finished["cancelSyncJob"] == {"job": None, "errors": [{"code": "CONFLICT"}]}

    read = (await gql(open_client, READ, key, id=connector["id"]))["data"]
    assert read["connector"]["syncStats"] == {"productsSynced": 1, "productsPending": 2}
    assert read["connector"]["lastSyncAt"] is not None
    assert read["connectors"]["totalCount"] == 1


async def test_expected_failures_are_typed_errors_and_scopes_top_level(
    open_client: httpx.AsyncClient, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    bad = {**_input(woo), "platform": "oscommerce"}
    created = (await gql(open_client, CREATE, key, input=bad))["data"]["createConnector"]
    assert created["connector"] is None
    assert created["errors"][0]["field"] == "platform"

    reader = await make_key(["connectors:read"])
    denied = await gql(open_client, CREATE, reader, input=_input(woo))
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    missing = await gql(open_client, READ, reader, id="00000000-0000-0000-0000-000000000000")
    assert missing["data"]["connector"] is None


@asynccontextmanager
async def subscribed(
    app: FastAPI, init: dict[str, str], job_id: str
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection to the app served on loopback, subscribed to a job."""
    async with (
        serve(app) as url,
        websockets.connect(
            url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws,
    ):  # fmt: skip
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        subscribe = {"query": PROGRESS, "variables": {"id": job_id}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        yield ws


async def test_sync_progress_is_watched_over_a_websocket(
    open_app: FastAPI, open_client: httpx.AsyncClient, open_runtime: Runtime,
    make_key: MakeKey, woo: Store,
) -> None:  # fmt: skip
    key = await make_key()
    await make_products(open_runtime, key, 120)
    connector = (await gql(open_client, CREATE, key, input=_input(woo)))["data"]
    cid = connector["createConnector"]["connector"]["id"]
    job_id = (await gql(open_client, PUSH, key, id=cid))["data"]["pushProducts"]["job"]["id"]

    states: list[dict[str, Any]] = []
    async with subscribed(open_app, {"X-API-Key": key.plain}, job_id) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        states.append(first["payload"]["data"]["syncJobProgress"])
        worker = asyncio.create_task(run_jobs(open_runtime, queue="connectors"))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            if message["type"] == "complete":
                break
            states.append(message["payload"]["data"]["syncJobProgress"])
        await worker
    assert states[0]["id"] == job_id
    assert states[-1] == {"id": job_id, "status": "completed", "processed": 120, "total": 120}
    assert [s["processed"] for s in states] == sorted(s["processed"] for s in states)


async def test_a_subscription_needs_a_key_and_the_jobs_account(
    open_app: FastAPI, make_key: MakeKey
) -> None:
    stranger = await make_key(["connectors:read"])
    unknown = "00000000-0000-0000-0000-000000000000"
    # A socket without a key is closed on connection_init (tests/test_admission_websocket.py).
    async with subscribed(open_app, {"X-API-Key": stranger.plain}, unknown) as ws:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    assert message["payload"]["data"] is None
    assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
