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

from jobs import housekeeping
from models import ImportJob
from pim.auth import Caller
from pim.jobs import take_pending
from pim.migrate import upgrade_async
from pim.runtime import Runtime
from pim.settings import Settings
from resolvers import imports, keys, products
from resolvers.import_storage import InMemory
from service.runtime import build_runtime
from tests.conftest import ALL_SCOPES, Key
from tests.events_helper import product_event_types
from tests.import_files import csv_bytes, rows
from tests.imports_helper import job, upload
from tests.jobs_helper import run_jobs
from tests.worker_process import LEASE_SECONDS, worker_process

ROWS = 4000
# Small chunks: the import is still running when the test stops its worker.
CHUNK = {"PIM_IMPORT_CHUNK_SIZE": "20", "PIM_IMPORT_MERGE_CHUNK_SIZE": "20"}
# The worker that takes over finishes in bigger chunks: chunk ends do not depend on them.
FINISH = {"PIM_IMPORT_CHUNK_SIZE": "500", "PIM_IMPORT_MERGE_CHUNK_SIZE": "500"}


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
        told = await product_event_types(session, key.account_id)
    assert told == {"product.created": ROWS}  # each product's event once, sets expanded


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


class Embedded:
    """A fresh embedded default (its own SQLite file), as a process would open it:
    `resume_unfinished` resumes every job of a database, so none of other tests'."""

    def __init__(self, settings: Settings, caller: Caller) -> None:
        self.settings = settings
        self.caller = caller

    def start(self) -> Runtime:
        return build_runtime(self.settings)

    async def job(self, runtime: Runtime, job_id: uuid.UUID) -> ImportJob:
        async with runtime.db.read() as session:
            return await imports.get_job(session, self.caller, job_id=job_id)

    async def products(self, runtime: Runtime) -> int:
        async with runtime.db.read() as session:
            page = await products.list_products(session, self.caller, limit=1)
        return page.total


@pytest.fixture
async def embedded(tmp_path: Path, backend: str) -> Embedded:
    if backend != "sqlite":
        pytest.skip("the embedded default's in-process queue")
    settings = Settings(data_dir=tmp_path, import_chunk_size=20, import_merge_chunk_size=20)
    await upgrade_async(settings)
    runtime = build_runtime(settings)
    try:
        async with runtime.db.transaction() as session:
            account = await keys.get_or_create_account(session, "acme")
    finally:
        await runtime.close()
    caller = Caller(
        account_id=account.id, account_name=account.name, key_id=uuid.uuid4(),
        key_name="test", scopes=frozenset(ALL_SCOPES),
    )  # fmt: skip
    return Embedded(settings, caller)


async def _create_import(runtime: Runtime, caller: Caller, rows_: int, *, run: bool) -> uuid.UUID:
    async with runtime.db.transaction() as session:
        created = await imports.create_job(
            session, caller, file_name="catalog.csv", file=InMemory(csv_bytes(rows(rows_)))
        )
        if not run:
            take_pending(session)  # the process stopped before its job started
    job_id: uuid.UUID = created.id
    return job_id


async def test_the_embedded_default_resumes_jobs_a_stopped_process_left(
    embedded: Embedded,
) -> None:
    stopped = embedded.start()
    job_id = await _create_import(stopped, embedded.caller, 5, run=False)
    await stopped.close()
    started_again = embedded.start()
    try:
        assert await housekeeping.resume_unfinished(started_again) == 1
        await run_jobs(started_again)
        assert (await embedded.job(started_again, job_id)).status == "completed"
        assert await embedded.products(started_again) == 5
    finally:
        await started_again.close()


async def test_a_stopping_embedded_process_hands_its_import_over_to_the_next_start(
    embedded: Embedded,
) -> None:
    stopping = embedded.start()
    job_id = await _create_import(stopping, embedded.caller, ROWS, run=True)
    await _until(stopping, str(job_id), lambda j: j.checkpoint >= 200, within=60)
    await stopping.close()  # at the next chunk, well within the drain time
    started_again = embedded.start()
    try:
        stopped = await embedded.job(started_again, job_id)
        assert stopped.status == "processing" and 0 < stopped.checkpoint < ROWS
        assert await housekeeping.resume_unfinished(started_again) == 1
        await run_jobs(started_again)
        done = await embedded.job(started_again, job_id)
        assert (done.status, done.checkpoint, done.products_created) == ("completed", ROWS, ROWS)
        assert await embedded.products(started_again) == ROWS
    finally:
        await started_again.close()
