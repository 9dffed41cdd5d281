"""Running a connector sync job: push or pull in chunks, each chunk in its own transaction.

A chunk hit by a transient platform error (429, 5xx, unreachable) is retried with
backoff, honouring the platform's Retry-After within a bound; a permanent error is
recorded on each product of that chunk. Either way the next chunk goes on.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from connectors.base import CHUNK_SIZE, ConnectorUnusable, ItemOutcome, PlatformAdapter
from connectors.http import PlatformError
from pim import logs, progress
from pim.jobs import ending
from pim.runtime import Runtime
from pim.settings import Settings
from resolvers import sync
from resolvers.connectors import config_for, open_adapter
from resolvers.sync import RunningJob

log = logging.getLogger("pim.sync")
T = TypeVar("T")


async def backoff(settings: Settings, exc: PlatformError, attempt: int) -> None:
    """Wait before try `attempt + 1`, or re-raise when the error is permanent or tries ran out."""
    if not exc.transient or attempt >= max(0, settings.connector_retry_attempts):
        raise exc
    delay = exc.retry_after
    if delay is None:
        delay = settings.connector_retry_base_delay * 2**attempt
    await asyncio.sleep(min(delay, settings.connector_retry_max_delay))


async def with_retries(settings: Settings, call: Callable[[], Awaitable[T]]) -> T:
    attempt = 0
    while True:
        try:
            return await call()
        except PlatformError as exc:
            await backoff(settings, exc, attempt)
            attempt += 1


async def _chunk_outcomes(
    settings: Settings,
    product_ids: Sequence[uuid.UUID],
    call: Callable[[], Awaitable[list[ItemOutcome]]],
) -> list[ItemOutcome]:
    """The adapter's outcomes, or the chunk's error on each of its products (unless the
    connector as a whole is unusable: that fails the job)."""
    try:
        return await with_retries(settings, call)
    except ConnectorUnusable:
        raise
    except PlatformError as exc:
        return [ItemOutcome(pid, ok=False, error=exc.message, transient=exc.transient)
                for pid in product_ids]  # fmt: skip


async def _publish(runtime: Runtime, state: dict[str, Any]) -> None:
    await progress.publish(runtime.broker, sync.PROGRESS_KIND, state["id"], state)


async def _push_products(runtime: Runtime, run: RunningJob, adapter: PlatformAdapter) -> None:
    after: uuid.UUID | None = None
    while True:
        async with runtime.db.transaction() as session:
            ids = await sync.product_page(session, run, after, CHUNK_SIZE)
            pending = await sync.products_to_push(session, run.connector, ids) if ids else []
        if not ids:
            return
        after = ids[-1]
        to_send = [p.product for p in pending if not p.up_to_date]
        outcomes = (
            await _chunk_outcomes(
                runtime.settings,
                [p.product_id for p in to_send],
                partial(adapter.push_products, to_send),
            )
            if to_send
            else []
        )
        hashes = {p.product.product_id: p.content_hash for p in pending}
        async with runtime.db.transaction() as session:
            job = await sync.record_push(
                session, run, outcomes, hashes, skipped=len(pending) - len(to_send)
            )
            state = sync.progress_state(job)
        await _publish(runtime, state)
        if state["status"] == "cancelled":
            return


async def _push_levels(runtime: Runtime, run: RunningJob, adapter: PlatformAdapter) -> None:
    """Push stock or prices, chunk by chunk."""
    after: uuid.UUID | None = None
    while True:
        async with runtime.db.transaction() as session:
            ids = await sync.product_page(session, run, after, CHUNK_SIZE)
            if run.kind == "push-stock":
                levels: list[Any] = await sync.stock_levels(session, run.connector, ids)
            else:
                levels = await sync.price_levels(
                    session, run.connector, ids, adapter.config.currency
                )
        if not ids:
            return
        after = ids[-1]
        send = adapter.push_stock if run.kind == "push-stock" else adapter.push_prices
        outcomes = (
            await _chunk_outcomes(
                runtime.settings, [lv.product_id for lv in levels], partial(send, levels)
            )
            if levels
            else []
        )
        async with runtime.db.transaction() as session:
            job = await sync.count_outcomes(session, run, outcomes, skipped=len(ids) - len(levels))
            state = sync.progress_state(job)
        await _publish(runtime, state)
        if state["status"] == "cancelled":
            return


async def _pull_products(runtime: Runtime, run: RunningJob, adapter: PlatformAdapter) -> None:
    """Page by page. An iterator that raised cannot go on: after a transient error the
    pull starts again and skips the pages already stored."""
    stored = 0
    attempt = 0
    while True:
        try:
            index = 0
            async for page in adapter.pull_products():
                index += 1
                if index <= stored:
                    continue
                if page:
                    async with runtime.db.transaction() as session:
                        job = await sync.record_pull(session, run, page)
                        state = sync.progress_state(job)
                    await _publish(runtime, state)
                    if state["status"] == "cancelled":
                        return
                stored = index
            return
        except PlatformError as exc:
            await backoff(runtime.settings, exc, attempt)
            attempt += 1


STEPS = {
    "push-products": _push_products,
    "pull-products": _pull_products,
    "push-stock": _push_levels,
    "push-prices": _push_levels,
}


async def _run_connector_sync(ctx: dict[str, Any], sync_job_id: str) -> str:
    """The `connectors` queue's job: run one sync job to its end. Idempotent: a finished
    job is not run again, and a re-run sends only what the links say is not there yet."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.db.transaction() as session:
        begun = await sync.begin_job(session, uuid.UUID(sync_job_id))
        if begun is None:
            return "skipped"
        run, state = begun
        logs.bind(account_id=str(run.account_id))
        config = config_for(run.connector, runtime.settings)
    await _publish(runtime, state)
    error: str | None = None
    try:
        async with open_adapter(config, runtime.settings) as adapter:
            await STEPS[run.kind](runtime, run, adapter)
    except PlatformError as exc:
        # Only a pull's page (or the adapter as a whole) can fail the job like this.
        error = exc.message
    except Exception as exc:
        log.exception("sync job %s failed", sync_job_id)
        error = f"erreur interne : {type(exc).__name__}"
    async with runtime.db.transaction() as session:
        job = await sync.finish_job(session, run, error=error)
        state = sync.progress_state(job)
    await _publish(runtime, state)
    return str(state["status"])


async def _failed(ctx: dict[str, Any], reference: str, sync_job_id: str) -> str:
    """The last try failed outside the adapter's work (which ends the job itself)."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.db.transaction() as session:
        job = await sync.fail_unexpectedly(session, uuid.UUID(sync_job_id), reference)
        state = sync.progress_state(job) if job is not None else None
    if state is None:
        return "skipped"
    await _publish(runtime, state)
    return "failed"


run_connector_sync = ending(_run_connector_sync, _failed)
