"""Imports over GraphQL: upload mutation, queries, typed control errors, and the
importJobProgress subscription through a real websocket (graphql-transport-ws)."""

import asyncio
import json
from typing import Any

import httpx
import websockets
from fastapi import FastAPI

from pim.runtime import Runtime
from resolvers import imports
from resolvers.import_storage import InMemory
from tests.conftest import Key, MakeKey, gql
from tests.import_files import csv_bytes, rows
from tests.jobs_helper import run_jobs
from tests.loopback import serve

CREATE = """mutation($file: Upload!, $dryRun: Boolean!, $mapping: JSON) {
  createImportJob(file: $file, supplierCode: "SUP_A", dryRun: $dryRun, mapping: $mapping) {
    job { id status fileName fileType fileSize dryRun mode supplierCode }
    errors { field message code }
  }
}"""
JOB = """query($id: ID!) {
  importJob(id: $id) { status totalRows processedRows successfulRows failedRows productsCreated
    productsUpdated errorSummary startedAt completedAt }
  importJobs(first: 5) { totalCount edges { node { id } } }
  importJobLogs(id: $id, level: "error") {
    totalCount edges { node { rowNumber level field message value } } }
  importJobPreview(id: $id, limit: 1) { totalRows rows validationErrors }
}"""
CONTROL = """mutation($id: ID!) {
  confirmImportJob(id: $id) { job { status } errors { field message code } }
}"""
CANCEL = """mutation($id: ID!) {
  cancelImportJob(id: $id) { job { id status } errors { field message code } }
}"""
PROGRESS = """subscription($id: ID!) {
  importJobProgress(id: $id) { id status totalRows processedRows productsCreated failedRows }
}"""


async def create(
    client: httpx.AsyncClient, key: Key, content: bytes, *, dry_run: bool = False, **variables: Any
) -> dict[str, Any]:
    operations = {"query": CREATE, "variables": {"file": None, "dryRun": dry_run, **variables}}
    response = await client.post(
        "/graphql",
        headers=key.headers,
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("catalog.csv", content, "text/csv")},
    )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()["data"]["createImportJob"]
    return payload


async def test_upload_run_and_read_a_job(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    content = csv_bytes([["123ABC7890", "Bad", "1", "2", "B", "1", "1"], *rows(2)])
    payload = await create(client, key, content, dry_run=True)
    job = payload["job"]
    assert payload["errors"] == []
    assert job == {"id": job["id"], "status": "analyzing", "fileName": "catalog.csv",
                   "fileType": "csv", "fileSize": len(content), "dryRun": True,
                   "mode": "UPSERT", "supplierCode": "SUP_A"}  # fmt: skip
    await run_jobs(runtime)
    data = (await gql(client, JOB, key, id=job["id"]))["data"]
    assert data["importJob"] | {"startedAt": None, "completedAt": None} == {
        "status": "ready", "totalRows": 3, "processedRows": 3, "successfulRows": 2,
        "failedRows": 1, "productsCreated": 2, "productsUpdated": 0,
        "errorSummary": "1 row failed EAN validation", "startedAt": None, "completedAt": None,
    }  # fmt: skip
    assert data["importJobs"] == {"totalCount": 1, "edges": [{"node": {"id": job["id"]}}]}
    assert data["importJobLogs"]["edges"] == [{"node":
        {"rowNumber": 2, "level": "error", "field": "ean",
         "message": "format invalide (8, 12, 13 ou 14 chiffres attendus)", "value": "123ABC7890"}}
    ]  # fmt: skip
    assert data["importJobPreview"]["totalRows"] == 3
    assert data["importJobPreview"]["rows"][0]["ean"] == "123ABC7890"

    confirmed = (await gql(client, CONTROL, key, id=job["id"]))["data"]["confirmImportJob"]
    assert confirmed == {"job": {"status": "pending"}, "errors": []}
    await run_jobs(runtime)
    again = (await gql(client, CONTROL, key, id=job["id"]))["data"]["confirmImportJob"]
    assert again["job"] is None
    assert again["errors"] == [{"field": "status", "code": "CONFLICT", "message":
        "Impossible de confirmer l'import : son statut est « completed » (attendu : ready)."}]  # fmt: skip


JOBS_PAGE = """query($after: String) {
  importJobs(first: 2, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { fileName } } }
}"""
LOGS_PAGE = """query($id: ID!, $after: String) {
  importJobLogs(id: $id, first: 2, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { rowNumber } } }
}"""


async def test_job_and_log_lists_are_relay_connections_with_keyset_cursors(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    bad = [[f"12345{n}", "Bad", "1", "2", "B", "1", "1"] for n in range(3)]
    ids = [(await create(client, key, csv_bytes(bad)))["job"]["id"] for _ in range(3)]
    await run_jobs(runtime)
    jobs = (await gql(client, JOBS_PAGE, key))["data"]["importJobs"]
    assert (jobs["totalCount"], jobs["pageInfo"]["hasNextPage"], len(jobs["edges"])) == (3, True, 2)
    rest = (await gql(client, JOBS_PAGE, key, after=jobs["pageInfo"]["endCursor"]))["data"]
    assert (len(rest["importJobs"]["edges"]), rest["importJobs"]["pageInfo"]["hasNextPage"]) == (
        1,
        False,
    )
    logs = (await gql(client, LOGS_PAGE, key, id=ids[0]))["data"]["importJobLogs"]
    assert [e["node"]["rowNumber"] for e in logs["edges"]] == [2, 3]
    more = await gql(client, LOGS_PAGE, key, id=ids[0], after=logs["pageInfo"]["endCursor"])
    assert [e["node"]["rowNumber"] for e in more["data"]["importJobLogs"]["edges"]] == [4]
    wrong = await gql(client, JOBS_PAGE, key, after="nope")
    assert wrong["errors"][0]["message"] == "after : curseur invalide"


async def test_bad_input_and_missing_scopes_are_typed_errors(
    client: httpx.AsyncClient, runtime: Runtime, make_key: MakeKey
) -> None:
    key = await make_key(["imports:write"])
    bad = await create(client, key, csv_bytes(rows(1)), mapping={"EAN": "nope"})
    assert bad == {"job": None, "errors": [
        {"field": "mapping", "message": "champ produit inconnu : nope", "code": "INVALID"}]}  # fmt: skip
    denied = await gql(client, JOB, key, id="00000000-0000-0000-0000-000000000000")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    missing = await gql(client, CANCEL, key, id="00000000-0000-0000-0000-000000000000")
    assert missing["data"]["cancelImportJob"]["errors"][0]["code"] == "NOT_FOUND"
    await run_jobs(runtime)


async def _receive(socket: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout=20))
    return message


async def _subscribe(base: str, init: dict[str, str], job_id: str) -> Any:
    socket = await websockets.connect(
        base.replace("http", "ws", 1) + "/graphql", subprotocols=["graphql-transport-ws"]
    )
    await socket.send(json.dumps({"type": "connection_init", "payload": init}))
    assert (await _receive(socket))["type"] == "connection_ack"
    subscribe = {"query": PROGRESS, "variables": {"id": job_id}}
    await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
    return socket


async def test_a_websocket_subscriber_sees_progress_to_completion(
    app: FastAPI, runtime: Runtime, key: Key, monkeypatch: Any
) -> None:
    monkeypatch.setattr(runtime.settings, "import_chunk_size", 2)
    monkeypatch.setattr(runtime.settings, "import_merge_chunk_size", 2)
    monkeypatch.setattr(runtime.settings, "import_progress_interval_seconds", 0)
    async with runtime.db.transaction() as session:
        job = await imports.create_job(
            session, key.caller(), file_name="catalog.csv", file=InMemory(csv_bytes(rows(5)))
        )
        # Paused before any worker sees it, so the stream's start is known.
        await imports.control_job(session, key.caller(), job_id=job.id, action="pause")
    await run_jobs(runtime)
    async with serve(app) as base:
        socket = await _subscribe(base, {"Authorization": f"Bearer {key.plain}"}, str(job.id))
        try:
            first = await _receive(socket)
            assert first["payload"]["data"]["importJobProgress"] == {
                "id": str(job.id), "status": "paused", "totalRows": 0, "processedRows": 0,
                "productsCreated": 0, "failedRows": 0,
            }  # fmt: skip
            async with runtime.db.transaction() as session:
                await imports.control_job(session, key.caller(), job_id=job.id, action="resume")
            await run_jobs(runtime)
            states = []
            while (message := await _receive(socket))["type"] == "next":
                states.append(message["payload"]["data"]["importJobProgress"])
            assert message == {"id": "1", "type": "complete"}
        finally:
            await socket.close()
    assert states[-1] == {"id": str(job.id), "status": "completed", "totalRows": 5,
                          "processedRows": 5, "productsCreated": 5, "failedRows": 0}  # fmt: skip
    processed = [s["processedRows"] for s in states if s["status"] == "processing"]
    assert processed == sorted(processed) and 2 in processed and 4 in processed


async def test_a_subscription_needs_a_key_with_imports_read(
    app: FastAPI, runtime: Runtime, make_key: MakeKey
) -> None:
    owner = await make_key()
    writer = await make_key(["imports:write"], account=owner.account)
    async with runtime.db.transaction() as session:
        job = await imports.create_job(
            session, owner.caller(), file_name="c.csv", file=InMemory(csv_bytes(rows(1)))
        )
    await run_jobs(runtime)
    async with serve(app) as base:
        # (A socket without a key is closed on connection_init: tests/test_admission_websocket.py.)
        socket = await _subscribe(base, {"X-API-Key": writer.plain}, str(job.id))
        try:
            error = await _receive(socket)
        finally:
            await socket.close()
        # Raised by the resolver: an execution result with errors, then the end.
        assert error["type"] == "next" and error["payload"]["data"] is None
        assert error["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        socket = await _subscribe(base, {"X-API-Key": owner.plain}, str(job.id))
        try:
            done = await _receive(socket)
            assert done["payload"]["data"]["importJobProgress"]["status"] == "completed"
            assert (await _receive(socket))["type"] == "complete"
        finally:
            await socket.close()
