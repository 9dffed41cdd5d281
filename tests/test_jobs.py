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


class Watcher:
    """Watches a job's progress, taking `pause` seconds over each state (a slow socket)."""

    def __init__(self, runtime: Runtime, job: str, pause: float = 0) -> None:
        self.seen: list[dict] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._watch(runtime, job, pause))

    async def _watch(self, runtime: Runtime, job: str, pause: float) -> None:
        async for state in progress.watch(runtime.broker, "test", job, final={"completed"}):
            self.seen.append(state)
            self._changed.set()
            await asyncio.sleep(pause)

    async def until_seen(self, count: int) -> None:
        async with asyncio.timeout(5):
            while True:
                self._changed.clear()
                if len(self.seen) >= count:
                    return
                await self._changed.wait()

    async def processed(self) -> list[int]:
        await asyncio.wait_for(self.task, timeout=5)
        return [s["processed"] for s in self.seen]


async def test_progress_is_watched_from_the_current_state_to_the_end(runtime: Runtime) -> None:
    job = "job-under-watch"
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 10})
    watcher = Watcher(runtime, job)
    await watcher.until_seen(1)
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 20})
    await watcher.until_seen(2)
    await progress.publish(runtime.broker, "test", job, {"status": "completed", "processed": 30})
    assert await watcher.processed() == [10, 20, 30]


async def test_a_watcher_that_falls_behind_skips_to_the_newest_state(runtime: Runtime) -> None:
    job = "job-watched-slowly"
    await progress.publish(runtime.broker, "test", job, {"status": "processing", "processed": 0})
    watcher = Watcher(runtime, job, pause=0.2)
    await watcher.until_seen(1)
    # Published faster than the watcher reads: the states in between are stale.
    for processed in range(1, 50):
        await progress.publish(
            runtime.broker, "test", job, {"status": "processing", "processed": processed}
        )
    await progress.publish(runtime.broker, "test", job, {"status": "completed", "processed": 50})
    processed = await watcher.processed()
    assert processed[-1] == 50 and len(processed) < 10 and processed == sorted(processed)


async def test_a_late_watcher_gets_the_final_state_and_stops(runtime: Runtime) -> None:
    await progress.publish(
        runtime.broker, "test", "done-job", {"status": "completed", "processed": 5}
    )
    states = [
        s async for s in progress.watch(runtime.broker, "test", "done-job", final={"completed"})
    ]
    assert states == [{"status": "completed", "processed": 5}]


async def test_changes_published_before_the_current_state_was_read_are_dropped(
    runtime: Runtime,
) -> None:
    job = "job-read-from-its-database"
    seen: list[dict] = []
    first = asyncio.Event()

    async def current() -> dict:
        # The worker publishes while the watcher reads: the read already holds it.
        await progress.publish(runtime.broker, "test", job, {"status": "running", "processed": 10})
        return {"status": "running", "processed": 20}

    async def watch() -> None:
        states = progress.watch(
            runtime.broker, "test", job, final={"failed"}, current=current, counter="processed"
        )
        async for state in states:
            seen.append(state)
            first.set()

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(first.wait(), timeout=5)
    await asyncio.sleep(0.1)  # the stale change reaches the watcher meanwhile
    await progress.publish(runtime.broker, "test", job, {"status": "running", "processed": 30})
    await asyncio.sleep(0.1)
    # A re-run starts its counters again; its end still ends the stream.
    await progress.publish(runtime.broker, "test", job, {"status": "failed", "processed": 5})
    await asyncio.wait_for(watcher, timeout=5)
    assert [s["processed"] for s in seen] == [20, 30, 5]


async def test_a_job_failing_unexpectedly_runs_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs
    import pim.jobs
    import service.worker

    tries: list[int] = []

    async def flaky(ctx: dict, marker: str) -> str:
        tries.append(ctx["job_try"])
        if len(tries) < 3:
            raise ConnectionError("the database went away")
        return marker

    monkeypatch.setitem(jobs.REGISTRY, "flaky", flaky)
    monkeypatch.setattr(pim.jobs, "RETRY_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(service.worker, "RETRY_DELAY_SECONDS", 0.0)
    await runtime.queue.enqueue("flaky", "done")
    await run_jobs(runtime)
    assert tries == [1, 2, 3]
