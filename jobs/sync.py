"""Running a connector sync job: push or pull in chunks, each chunk in its own transaction.

Transient platform errors (429, 5xx, unreachable) are retried per request by the
platform client (connectors.http), never by replaying a chunk. What reaches this
module is either permanent (recorded on each product of the chunk) or a request
whose outcome is unknown: then the products the platform may have created are
reconciled (the ids already seen are recorded, the others looked up on the
platform by SKU or EAN) before only what is still missing is sent again. Products
whose own outcome is transient are retried the same way. Either way the next chunk
goes on.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from connectors.base import ItemOutcome, OutgoingProduct, PlatformAdapter
from connectors.http import ConnectorUnusable, PlatformError, RetryPolicy
from pim import logs, progress
from pim.jobs import ending
from pim.runtime import Runtime
from pim.settings import Settings
from resolvers import sync
from resolvers.connectors import config_for, open_adapter
from resolvers.sync import RunningJob

log = logging.getLogger("pim.sync")


async def backoff(settings: Settings, exc: PlatformError, attempt: int) -> None:
    """Wait before try `attempt + 1`, or re-raise when the error is permanent or tries ran out."""
    policy = RetryPolicy.from_settings(settings)
    if not exc.transient or attempt >= policy.attempts:
        raise exc
    await asyncio.sleep(policy.delay(attempt, exc.retry_after))


async def _level_outcomes(
    settings: Settings,
    product_ids: Sequence[uuid.UUID],
    call: Callable[[], Awaitable[list[ItemOutcome]]],
) -> list[ItemOutcome]:
    """The adapter's outcomes, or the chunk's error on each of its products. Stock and
    prices are absolute values: a chunk whose answer was lost may be sent again (the
    client already retried what it could, so only an unknown outcome comes back here)."""
    attempt = 0
    while True:
        try:
            return await call()
        except ConnectorUnusable:
            raise
        except PlatformError as exc:
            try:
                if not exc.uncertain:
                    raise
                await backoff(settings, exc, attempt)
            except PlatformError:
                return [ItemOutcome(pid, ok=False, error=exc.message, transient=exc.transient)
                        for pid in product_ids]  # fmt: skip
            attempt += 1


Remember = Callable[[dict[uuid.UUID, str]], Awaitable[None]]


def _linked(products: list[OutgoingProduct], ids: dict[uuid.UUID, str]) -> list[OutgoingProduct]:
    return [
        replace(p, external_id=ids[p.product_id]) if p.product_id in ids else p for p in products
    ]


async def _reconciled(
    adapter: PlatformAdapter, products: list[OutgoingProduct], remember: Remember
) -> list[OutgoingProduct]:
    """The products, those that turn out to exist on the platform linked (and recorded)."""
    found = await adapter.find_existing([p for p in products if not p.external_id])
    if found:
        await remember(found)
    return _linked(products, found)


async def push_products_once(
    settings: Settings,
    adapter: PlatformAdapter,
    products: Sequence[OutgoingProduct],
    remember: Remember,
    *,
    uncertain: bool = False,
) -> list[ItemOutcome]:
    """Push one chunk so that each product exists once on the platform, whatever it
    answers: one outcome per product, in order. `remember` records platform ids as
    soon as they are known, before anything is sent again. `uncertain`: the chunk may
    have been sent already (a job resumed after a crash), so look before creating."""
    pending = list(products)
    done: dict[uuid.UUID, ItemOutcome] = {}
    policy = RetryPolicy.from_settings(settings)
    reconcile = uncertain
    attempt = 0
    while pending:
        try:
            if reconcile:
                pending = await _reconciled(adapter, pending, remember)
            adapter.created.clear()
            outcomes = await adapter.push_products(pending)
        except ConnectorUnusable:
            raise
        except PlatformError as exc:
            seen = dict(adapter.created)
            if seen:
                await remember(seen)
            pending = _linked(pending, seen)
            if not exc.transient or attempt >= policy.attempts:
                done.update({p.product_id: ItemOutcome(
                    p.product_id, ok=False, external_id=p.external_id, error=exc.message,
                    transient=exc.transient) for p in pending})  # fmt: skip
                break
            retry_after = exc.retry_after
        else:
            again = {o.product_id for o in outcomes if o.transient and attempt < policy.attempts}
            done.update({o.product_id: o for o in outcomes if o.product_id not in again})
            pending = [p for p in pending if p.product_id in again]
            retry_after = None
        # Whatever was sent may have arrived: look before creating again.
        reconcile = True
        if pending:
            await asyncio.sleep(policy.delay(attempt, retry_after))
        attempt += 1
    return [done[p.product_id] for p in products]


async def _publish(runtime: Runtime, state: dict[str, Any]) -> None:
    await progress.publish(runtime.broker, sync.PROGRESS_KIND, state["id"], state)


async def _remember_links(runtime: Runtime, run: RunningJob, ids: dict[uuid.UUID, str]) -> None:
    async with runtime.db.transaction() as session:
        await sync.record_links(session, run, ids)


async def _push_products(runtime: Runtime, run: RunningJob, adapter: PlatformAdapter) -> None:
    after: uuid.UUID | None = None
    # The first chunk of a resumed run may be the one its dead worker was sending.
    uncertain = run.resumed
    while True:
        async with runtime.db.transaction() as session:
            ids = await sync.product_page(session, run, after, adapter.chunk_size)
            pending = await sync.products_to_push(session, run.connector, ids) if ids else []
        if not ids:
            return
        after = ids[-1]
        to_send = [p.product for p in pending if not p.up_to_date]
        outcomes = (
            await push_products_once(
                runtime.settings,
                adapter,
                to_send,
                partial(_remember_links, runtime, run),
                uncertain=uncertain,
            )
            if to_send
            else []
        )
        uncertain = uncertain and not to_send
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
            size = adapter.level_chunk_size or adapter.chunk_size
            ids = await sync.product_page(session, run, after, size)
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
            await _level_outcomes(
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
    """Page by page; the client retries each page's request on its own budget, so a
    failure resumes at the page that failed, and only a page out of retries ends the job."""
    async for page in adapter.pull_products():
        if not page:
            continue
        async with runtime.db.transaction() as session:
            job = await sync.record_pull(session, run, page)
            state = sync.progress_state(job)
        await _publish(runtime, state)
        if state["status"] == "cancelled":
            return


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
        async with open_adapter(config, runtime.settings, buckets=runtime.buckets) as adapter:
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
