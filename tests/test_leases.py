"""Jobs that outlive their worker: leases, the reaper, draining on SIGTERM, and the
embedded default resuming what a stopped process left.

The worker tests start real `pim worker` processes (short leases, see
tests.worker_process) against the test PostgreSQL and Redis, and kill them.
"""

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from jobs import housekeeping
from models import Event, ImportJob
from pim.jobs import take_pending
from pim.runtime import Runtime
from resolvers import imports, products
from resolvers.import_storage import InMemory
from tests.conftest import Key
from tests.import_files import csv_bytes, rows
from tests.jobs_helper import run_jobs
from tests.test_imports import job, upload
from tests.worker_process import LEASE_SECONDS, worker_process

ROWS = 4000
# Small chunks: the import is still running when the test stops its worker.
CHUNK = {"PIM_IMPORT_CHUNK_SIZE": "20"}
# The worker that takes over finishes in bigger chunks: chunk ends do not depend on them.
FINISH = {"PIM_IMPORT_CHUNK_SIZE": "500"}


@pytest.fixture
def real_stack(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("workers and leases are the real stack's; see the resume test")


async def _import_job(runtime: Runtime, job_id: str) -> ImportJob:
    async with runtime.db.read() as session:
        found = await session.get(ImportJob, uuid.UUID(job_id))
    assert found is not None
    return found


async def _until(runtime: Runtime, job_id: str, done: Any, within: float) -> ImportJob:
    deadline = time.monotonic() + within
    while True:
        found = await _import_job(runtime, job_id)
        if done(found):
            return found
        assert time.monotonic() < deadline, (found.status, found.checkpoint)
        await asyncio.sleep(0.05)


async def _each_row_once(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, job_id: str
) -> None:
    body = await job(client, key, job_id)
    assert (body["status"], body["processed_rows"], body["total_rows"]) == ("completed", ROWS, ROWS)
    assert (body["products_created"], body["failed_rows"]) == (ROWS, 0)
    async with runtime.db.read() as session:
        assert (await products.list_products(session, key.caller(), limit=1)).total == ROWS
        events = await session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.account_id == key.account_id, Event.type == "product.created")
        )
    assert events == ROWS


async def test_a_killed_workers_import_is_taken_over_and_each_row_written_once(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, real_stack: None, tmp_path: Path
) -> None:
    created = (await upload(client, key, "catalog.csv", csv_bytes(rows(ROWS)))).json()
    async with worker_process(runtime.settings, tmp_path, **CHUNK) as first:
        await _until(runtime, created["id"], lambda j: j.checkpoint >= 200, within=60)
        first.kill()
        await first.exited(within=10)
    killed_at = time.monotonic()
    reached = (await _import_job(runtime, created["id"])).checkpoint
    assert 0 < reached < ROWS
    async with worker_process(runtime.settings, tmp_path, **FINISH) as second:
        # Taken over once the lease runs out, from the last committed chunk.
        await _until(runtime, created["id"], lambda j: j.checkpoint > reached, within=60)
        taken_over = time.monotonic() - killed_at
        await _until(runtime, created["id"], lambda j: j.status == "completed", within=120)
        assert "lost its worker (lease expired)" in second.output()
    print(f"taken over {taken_over:.1f} s after the kill (lease {LEASE_SECONDS} s)")
    await _each_row_once(client, runtime, key, created["id"])


async def test_sigterm_hands_the_import_back_at_a_chunk_and_another_worker_ends_it(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, real_stack: None, tmp_path: Path
) -> None:
    created = (await upload(client, key, "catalog.csv", csv_bytes(rows(ROWS)))).json()
    drain = {**CHUNK, "PIM_WORKER_DRAIN_SECONDS": "30"}
    async with worker_process(runtime.settings, tmp_path, **drain) as first:
        await _until(runtime, created["id"], lambda j: j.checkpoint >= 200, within=60)
        first.terminate()
        # Handed back at the next chunk: the worker exits well before the drain time,
        # after which it would cancel the job.
        assert await first.exited(within=20) == 0
    stopped = await _import_job(runtime, created["id"])
    assert stopped.status == "processing" and 0 < stopped.checkpoint < ROWS
    async with worker_process(runtime.settings, tmp_path, **FINISH):
        await _until(runtime, created["id"], lambda j: j.status == "completed", within=120)
    await _each_row_once(client, runtime, key, created["id"])


async def test_the_embedded_default_resumes_jobs_a_stopped_process_left(
    client: httpx.AsyncClient, runtime: Runtime, key: Key
) -> None:
    # A process that stopped after the upload, before its job ran: the in-process
    # queue's task died with it.
    async with runtime.db.transaction() as session:
        created = await imports.create_job(
            session, key.caller(), file_name="catalog.csv", file=InMemory(csv_bytes(rows(5)))
        )
        take_pending(session)
    assert await housekeeping.resume_unfinished(runtime) >= 1
    await run_jobs(runtime)
    body = await job(client, key, str(created.id))
    assert (body["status"], body["products_created"]) == ("completed", 5)


async def test_a_stopping_embedded_process_hands_its_import_over_to_the_next_start(
    client: httpx.AsyncClient, runtime: Runtime, key: Key, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the embedded default's in-process queue")
    settings = runtime.settings.model_copy(update={"import_chunk_size": 20})
    stopping = Runtime.from_settings(settings)
    async with stopping.db.transaction() as session:
        created = await imports.create_job(
            session, key.caller(), file_name="catalog.csv", file=InMemory(csv_bytes(rows(ROWS)))
        )
    job_id = str(created.id)
    await _until(runtime, job_id, lambda j: j.checkpoint >= 200, within=60)
    await stopping.close()  # at the next chunk, well within the drain time
    stopped = await _import_job(runtime, job_id)
    assert stopped.status == "processing" and 0 < stopped.checkpoint < ROWS
    started_again = Runtime.from_settings(settings)
    try:
        assert await housekeeping.resume_unfinished(started_again) >= 1
        await run_jobs(started_again)
    finally:
        await started_again.close()
    await _each_row_once(client, runtime, key, job_id)
