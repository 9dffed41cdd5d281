"""A connector sync whose worker is killed (or stopped) mid-push is taken over by
another worker from its last committed chunk, and every product reaches the platform
once; a sync that keeps failing ends failed."""

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from models import ConnectorProductLink, SyncJob
from pim.runtime import Runtime
from tests.conftest import MakeKey
from tests.connectors.conftest import Store, create_connector, make_products, sync
from tests.connectors.fakes.faults import Faults
from tests.connectors.fakes.stores import WooFake
from tests.loopback import serve
from tests.worker_process import worker_process

PRODUCTS = 250  # three chunks of 100, 100 and 50


class HoldsAWrite:
    """The fake behind a gate that holds its `nth` product write: the request never
    reaches the platform, and answers 503 once released (to a client long gone)."""

    def __init__(self, app: Any, nth: int) -> None:
        self.app = app
        self.nth = nth
        self.seen = 0
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/products/batch"):
            self.seen += 1
            if self.seen == self.nth:
                self.held.set()
                await self.release.wait()
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


async def _sync_job(runtime: Runtime, job_id: str) -> SyncJob:
    async with runtime.db.read() as session:
        found = await session.get(SyncJob, uuid.UUID(job_id))
    assert found is not None
    return found


@pytest.mark.parametrize("stop", ["kill", "terminate"])
async def test_a_push_whose_worker_dies_or_stops_is_taken_over_and_each_product_sent_once(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey,
    backend: str, tmp_path: Path, stop: str,
) -> None:  # fmt: skip
    """SIGKILL: the lease lapses and a reaper hands the job over. SIGTERM: after the
    drain time the worker cancels the push, which arq puts back in the queue."""
    if backend != "postgres":
        pytest.skip("workers and leases are the real stack's")
    key = await make_key()
    await make_products(open_runtime, key, PRODUCTS)
    fake = WooFake()
    gate = HoldsAWrite(fake.app(), nth=2)
    env = {
        "PIM_OUTBOUND_ALLOWED_NETWORKS": json.dumps(["127.0.0.0/8"]),
        "PIM_OUTBOUND_ALLOW_HTTP": "true",
    }
    async with serve(gate) as url:
        connector = await create_connector(open_client, key, Store(fake, url, Faults()).fields())
        started = await open_client.post(
            f"/api/v1/connectors/{connector['id']}/sync/push-products", headers=key.bearer
        )
        job_id = started.json()["job_id"]
        drain = {"PIM_WORKER_DRAIN_SECONDS": "1"}
        async with worker_process(
            open_runtime.settings, tmp_path, queue="connectors", **env, **drain
        ) as first:
            # The first chunk is committed; the second is on its way to the platform.
            async with asyncio.timeout(60):
                await gate.held.wait()
            if stop == "kill":
                first.kill()
                await first.exited(within=10)
            else:
                first.terminate()
                assert await first.exited(within=20) == 0
        gate.release.set()
        assert (await _sync_job(open_runtime, job_id)).succeeded == 100
        async with worker_process(open_runtime.settings, tmp_path, queue="connectors", **env):
            deadline = time.monotonic() + 60
            while (job := await _sync_job(open_runtime, job_id)).status == "running":
                assert time.monotonic() < deadline, (job.processed, job.succeeded)
                await asyncio.sleep(0.1)
    # The re-run skips the chunk the links say arrived, and sends the other two.
    assert (job.status, job.succeeded, job.skipped, job.failed) == ("completed", 150, 100, 0)
    assert fake.writes == 3
    assert len(fake.products) == len(fake.by_sku()) == PRODUCTS
    async with open_runtime.db.read() as session:
        external_ids = await session.scalars(
            select(ConnectorProductLink.external_id).where(
                ConnectorProductLink.connector_id == uuid.UUID(connector["id"])
            )
        )
        assert sorted(external_ids) == sorted(fake.products)


async def test_a_sync_failing_on_every_try_ends_failed_and_says_where(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey,
    woo: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import jobs.sync
    import pim.jobs
    import service.worker

    def broken(*args: Any) -> Any:
        raise RuntimeError("a fault nobody foresaw")

    monkeypatch.setattr(pim.jobs, "RETRY_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(service.worker, "RETRY_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(jobs.sync, "config_for", broken)
    key = await make_key()
    await make_products(open_runtime, key, 3)
    connector = await create_connector(open_client, key, woo.fields())
    job = await sync(open_client, open_runtime, key, connector["id"], "push-stock")
    assert job["status"] == "failed" and job["completed_at"] is not None
    assert job["last_error"].startswith(
        "synchronisation interrompue par une erreur interne après 0 produits sur 0 (référence "
    )
    assert woo.fake.writes == 0
