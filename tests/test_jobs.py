"""The job spine: jobs enqueued after commit only, run by a real arq worker (or in
process), and progress published to the broker and watched to the end."""

import asyncio

import pytest

from pim import progress
from pim.jobs import defer
from pim.runtime import Runtime
from resolvers import products
from tests.conftest import Key, MakeKey
from tests.jobs_helper import run_jobs


async def test_a_deferred_job_runs_after_commit(runtime: Runtime, make_key: MakeKey) -> None:
    key: Key = await make_key(["products:read"])
    async with runtime.db.transaction() as session:
        defer(session, "load_demo_catalog", key.account, 40)
    await run_jobs(runtime)
    async with runtime.db.transaction() as session:
        page = await products.list_products(session, key.caller("products:read"), limit=1)
    assert page.total == 40


async def test_a_deferred_job_is_dropped_on_rollback(runtime: Runtime, make_key: MakeKey) -> None:
    key = await make_key(["products:read"])
    with pytest.raises(RuntimeError):
        async with runtime.db.transaction() as session:
            defer(session, "load_demo_catalog", key.account, 40)
            raise RuntimeError("the request failed")
    await run_jobs(runtime)
    async with runtime.db.transaction() as session:
        assert (
            await products.list_products(session, key.caller("products:read"), limit=1)
        ).total == 0


async def test_progress_is_watched_from_the_current_state_to_the_end(runtime: Runtime) -> None:
    job = "job-under-watch"
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 10})
    seen: list[dict] = []
    first = asyncio.Event()

    async def watcher() -> None:
        async for state in progress.watch(runtime.broker, "test", job, final={"completed"}):
            seen.append(state)
            first.set()

    task = asyncio.create_task(watcher())
    await asyncio.wait_for(first.wait(), timeout=5)
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 20})
    await progress.publish(runtime.broker, "test", job, {"status": "completed", "processed": 30})
    await asyncio.wait_for(task, timeout=5)
    assert [s["processed"] for s in seen] == [10, 20, 30]


async def test_a_late_watcher_gets_the_final_state_and_stops(runtime: Runtime) -> None:
    await progress.publish(
        runtime.broker, "test", "done-job", {"status": "completed", "processed": 5}
    )
    states = [
        s async for s in progress.watch(runtime.broker, "test", "done-job", final={"completed"})
    ]
    assert states == [{"status": "completed", "processed": 5}]


async def test_a_job_failing_unexpectedly_runs_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs
    import jobs.worker
    import pim.jobs

    tries: list[int] = []

    async def flaky(ctx: dict, marker: str) -> str:
        tries.append(ctx["job_try"])
        if len(tries) < 3:
            raise ConnectionError("the database went away")
        return marker

    monkeypatch.setitem(jobs.REGISTRY, "flaky", flaky)
    monkeypatch.setattr(pim.jobs, "RETRY_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(jobs.worker, "RETRY_DELAY_SECONDS", 0.0)
    await runtime.queue.enqueue("flaky", "done")
    await run_jobs(runtime)
    assert tries == [1, 2, 3]
