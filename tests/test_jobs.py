"""The job spine: jobs enqueued after commit only, run by a real arq worker (or in
process), and progress published to the broker and watched to the end."""

import asyncio
from collections.abc import Callable

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


async def watched(
    runtime: Runtime, job: str, seen: list[dict], pause: float = 0
) -> asyncio.Task[None]:
    """A watcher of the job (taking `pause` seconds over each state), started once it has
    seen the current state."""

    async def watcher() -> None:
        async for state in progress.watch(runtime.broker, "test", job, final={"completed"}):
            seen.append(state)
            await asyncio.sleep(pause)

    task = asyncio.create_task(watcher())
    await until(lambda: len(seen) == 1)
    return task


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.005)


async def test_progress_is_watched_from_the_current_state_to_the_end(runtime: Runtime) -> None:
    job = "job-under-watch"
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 10})
    seen: list[dict] = []
    task = await watched(runtime, job, seen)
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 20})
    await until(lambda: len(seen) == 2)
    await progress.publish(runtime.broker, "test", job, {"status": "completed", "processed": 30})
    await asyncio.wait_for(task, timeout=5)
    assert [s["processed"] for s in seen] == [10, 20, 30]


async def test_a_watcher_that_falls_behind_skips_to_the_newest_state(runtime: Runtime) -> None:
    job = "job-watched-slowly"
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 0})
    seen: list[dict] = []
    task = await watched(runtime, job, seen, pause=0.2)
    # Published faster than the watcher reads: the states in between are stale.
    for processed in range(1, 50):
        await progress.publish(
            runtime.broker, "test", job, {"status": "processing", "processed": processed}
        )
    await progress.publish(runtime.broker, "test", job, {"status": "completed", "processed": 50})
    await asyncio.wait_for(task, timeout=5)
    processed = [s["processed"] for s in seen]
    assert processed[-1] == 50 and len(processed) < 10 and processed == sorted(processed)


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
