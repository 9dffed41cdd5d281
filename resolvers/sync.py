"""Sync jobs: enqueueing them on the `connectors` queue, reading them, and the database
side of running them (what to send, per-product links and results, counters).

The job functions in jobs/sync.py talk to the platform; everything they read or
write in our database goes through the functions below, scoped to the job's account.
"""

import hashlib
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ItemOutcome, OutgoingProduct, PriceLevel, RemoteProduct, StockLevel
from models import (
    Account,
    Brand,
    Connector,
    ConnectorProductLink,
    PriceList,
    PriceListItem,
    Product,
    ProductStock,
    SyncJob,
)
from pim import json_encoding, metrics
from pim.auth import Caller
from pim.ids import uuid7
from pim.jobs import defer
from pim.sql import unique, upsert
from pim.timeutil import isoformat_z, utcnow
from resolvers.bounds import check_window
from resolvers.connectors import load_connector
from resolvers.errors import Conflict, FieldError, NotFound, ValidationFailed
from resolvers.permissions import Operation, require
from resolvers.product_writes import WriteItem, WriteOptions, write_products

CONNECTORS_QUEUE = "connectors"
JOB_FUNCTION = "run_connector_sync"
PROGRESS_KIND = "sync"
Kind = Literal["push-products", "pull-products", "push-stock", "push-prices"]
KINDS: tuple[Kind, ...] = ("push-products", "pull-products", "push-stock", "push-prices")
FINAL = frozenset({"completed", "failed", "cancelled"})
RUNNABLE = ("queued", "running")
MAX_PRODUCT_IDS = 10_000
# The sync jobs one list returns (the latest first; older ones are read one by one).
MAX_SYNC_JOBS = 100
LINK = ConnectorProductLink


@dataclass(frozen=True, slots=True)
class QueuedSync:
    job: SyncJob
    products_queued: int | None


def _live_products(account_id: uuid.UUID) -> Select[uuid.UUID]:
    return select(Product.id).where(Product.account_id == account_id, Product.deleted_at.is_(None))


def _product_ids(raw: list[Any]) -> list[uuid.UUID]:
    if len(raw) > MAX_PRODUCT_IDS:
        raise ValidationFailed.of(
            [FieldError("product_ids", f"au plus {MAX_PRODUCT_IDS} produits", "too_many")]
        )
    ids: list[uuid.UUID] = []
    errors: list[FieldError] = []
    for index, value in enumerate(raw):
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            errors.append(FieldError(f"product_ids[{index}]", "UUID invalide", "uuid_parsing"))
    if errors:
        raise ValidationFailed.of(errors)
    return unique(ids)


async def start_sync(
    session: AsyncSession,
    caller: Caller,
    *,
    connector_id: uuid.UUID,
    kind: Kind,
    product_ids: list[Any] | None = None,
    platform: str | None = None,
) -> QueuedSync:
    """Create a sync job and enqueue it on the connectors queue once the transaction commits."""
    require(caller, Operation.SETTINGS_MANAGE)
    if kind not in KINDS:
        raise ValidationFailed.of([FieldError("kind", f"opération inconnue : {kind}")])
    connector = await load_connector(session, caller, connector_id, platform)
    if connector.status != "active":
        raise Conflict(message="Le connecteur est inactif : activez-le avant de synchroniser.")
    ids: list[uuid.UUID] | None = None
    queued: int | None = None
    if kind == "push-products":
        live = _live_products(caller.account_id)
        if product_ids is not None:
            ids = _product_ids(product_ids)
            found = set((await session.scalars(live.where(Product.id.in_(ids)))).all())
            missing = [FieldError("product_ids", f"produit introuvable : {i}", "not_found")
                       for i in ids if i not in found]  # fmt: skip
            if missing:
                raise ValidationFailed.of(missing)
            queued = len(ids)
        else:
            queued = int(
                await session.scalar(select(func.count()).select_from(live.subquery())) or 0
            )
    job = SyncJob(
        id=uuid7(), account_id=caller.account_id, connector_id=connector.id, kind=kind,
        status="queued", total=queued or 0, product_ids=[str(i) for i in ids] if ids else None,
        created_at=utcnow(),
    )  # fmt: skip
    session.add(job)
    await session.flush()
    defer(session, JOB_FUNCTION, str(job.id), job_id=f"sync:{job.id}", queue=CONNECTORS_QUEUE)
    return QueuedSync(job=job, products_queued=queued)


async def get_sync_job(
    session: AsyncSession, caller: Caller, *, id: uuid.UUID, connector_id: uuid.UUID | None = None
) -> SyncJob:
    require(caller, Operation.CONNECTORS_READ)
    statement = select(SyncJob).where(SyncJob.account_id == caller.account_id, SyncJob.id == id)
    if connector_id is not None:
        statement = statement.where(SyncJob.connector_id == connector_id)
    job = await session.scalar(statement)
    if job is None:
        raise NotFound(message=f"Tâche de synchronisation '{id}' introuvable.", field="id")
    return job


async def list_sync_jobs(
    session: AsyncSession,
    caller: Caller,
    *,
    connector_id: uuid.UUID,
    platform: str | None = None,
    limit: int = 20,
) -> list[SyncJob]:
    """The connector's latest `limit` sync jobs, newest first."""
    require(caller, Operation.CONNECTORS_READ)
    check_window(limit, 0, MAX_SYNC_JOBS)
    await load_connector(session, caller, connector_id, platform)
    rows = await session.scalars(
        select(SyncJob)
        .where(SyncJob.account_id == caller.account_id, SyncJob.connector_id == connector_id)
        .order_by(SyncJob.created_at.desc(), SyncJob.id.desc())
        .limit(limit)
    )
    return list(rows)


async def cancel_sync_job(
    session: AsyncSession, caller: Caller, *, id: uuid.UUID, connector_id: uuid.UUID | None = None
) -> SyncJob:
    """Stop a queued or running job; a running one stops after its current chunk."""
    require(caller, Operation.SETTINGS_MANAGE)
    job = await get_sync_job(session, caller, id=id, connector_id=connector_id)
    cancelled = await session.execute(
        update(SyncJob)
        .where(SyncJob.id == job.id, SyncJob.status.in_(RUNNABLE))
        .values(status="cancelled", completed_at=utcnow())
    )
    await session.refresh(job)
    if not cancelled.rowcount:  # type: ignore[attr-defined]
        raise Conflict(message=f"La tâche est déjà terminée ({job.status}).")
    return job


def progress_state(job: SyncJob) -> dict[str, Any]:
    """What subscribers of a sync job see, published after every chunk."""
    return {
        "id": str(job.id), "connector_id": str(job.connector_id), "kind": job.kind,
        "status": job.status, "total": job.total, "processed": job.processed,
        "succeeded": job.succeeded, "failed": job.failed, "skipped": job.skipped,
        "created": job.created, "last_error": job.last_error,
        "started_at": isoformat_z(job.started_at), "completed_at": isoformat_z(job.completed_at),
    }  # fmt: skip


# --- The database side of running a job (no caller: the job acts for its own account) ---


@dataclass(frozen=True, slots=True)
class RunningJob:
    id: uuid.UUID
    account_id: uuid.UUID
    connector: Connector
    kind: Kind
    product_ids: list[uuid.UUID] | None
    # Already running when this run began: its worker died (or stopped) mid-chunk, so the
    # chunk it was sending may have reached the platform.
    resumed: bool = False


async def begin_job(
    session: AsyncSession, job_id: uuid.UUID
) -> tuple[RunningJob, dict[str, Any]] | None:
    """Mark a job running, with its first progress state; None when it is gone or already
    final (jobs may run twice)."""
    # Compare and set: a cancel committed meanwhile is never overwritten. A re-run
    # (after a worker crash) starts its counters again; links make it cheap.
    before = await session.scalar(select(SyncJob.status).where(SyncJob.id == job_id))
    started = await session.execute(
        update(SyncJob)
        .where(SyncJob.id == job_id, SyncJob.status.in_(RUNNABLE))
        .values(
            status="running",
            started_at=utcnow(),
            progressed_at=utcnow(),
            processed=0,
            succeeded=0,
            failed=0,
            skipped=0,
            created=0,
        )
    )
    if not started.rowcount:  # type: ignore[attr-defined]
        return None
    job = await session.get(SyncJob, job_id, populate_existing=True)
    connector = await session.get(Connector, job.connector_id) if job else None
    if job is None or connector is None:
        return None
    ids = [uuid.UUID(i) for i in job.product_ids] if job.product_ids else None
    if job.kind in ("push-products", "push-stock", "push-prices"):
        live = _live_products(job.account_id)
        if ids is not None:
            live = live.where(Product.id.in_(ids))
        job.total = int(
            await session.scalar(select(func.count()).select_from(live.subquery())) or 0
        )
    await session.flush()
    run = RunningJob(
        job.id, job.account_id, connector, job.kind, ids,  # type: ignore[arg-type]
        resumed=before == "running",
    )  # fmt: skip
    return run, progress_state(job)


async def product_page(
    session: AsyncSession, run: RunningJob, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """The next ids to process, in id order (keyset), restricted to the requested ones."""
    statement = _live_products(run.account_id)
    if run.product_ids is not None:
        statement = statement.where(Product.id.in_(run.product_ids))
    if after is not None:
        statement = statement.where(Product.id > after)
    return list(await session.scalars(statement.order_by(Product.id).limit(limit)))


@dataclass(frozen=True, slots=True)
class Pending:
    """A product to push, the hash of its content, and whether that content is already there."""

    product: OutgoingProduct
    content_hash: str
    up_to_date: bool


def content_hash(product: OutgoingProduct) -> str:
    values = asdict(product)
    del values["product_id"], values["external_id"]
    return hashlib.sha256(json_encoding.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _channel_price_list(session: AsyncSession, connector: Connector) -> uuid.UUID | None:
    if not connector.channel:
        return None
    found: uuid.UUID | None = await session.scalar(
        select(PriceList.id).where(
            PriceList.account_id == connector.account_id,
            PriceList.channel == connector.channel,
            PriceList.is_active.is_(True),
        )
    )
    return found


async def _product_rows(
    session: AsyncSession, connector: Connector, ids: list[uuid.UUID]
) -> list[Any]:
    """Products with brand, stock, channel price and link: one query for a whole chunk."""
    price_list = await _channel_price_list(session, connector)
    account = connector.account_id
    statement = (
        select(
            Product,
            Brand.name,
            ProductStock.quantity,
            PriceListItem.channel_price,
            LINK.external_id,
            LINK.content_hash,
            LINK.last_result,
        )
        .outerjoin(Brand, Brand.id == Product.brand_id)
        .outerjoin(
            ProductStock,
            and_(ProductStock.product_id == Product.id, ProductStock.account_id == account),
        )
        .outerjoin(
            PriceListItem,
            and_(
                PriceListItem.product_id == Product.id,
                PriceListItem.account_id == account,
                PriceListItem.price_list_id == price_list,
            ),
        )
        .outerjoin(
            LINK,
            and_(
                LINK.product_id == Product.id,
                LINK.connector_id == connector.id,
                LINK.account_id == account,
            ),
        )
        .where(Product.account_id == account, Product.id.in_(ids))
        .order_by(Product.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(statement)).all())


def _sku(product: Product) -> str:
    return product.reference or product.ean or str(product.id)


async def products_to_push(
    session: AsyncSession, connector: Connector, ids: list[uuid.UUID]
) -> list[Pending]:
    pending: list[Pending] = []
    for (
        product,
        brand,
        stock,
        channel_price,
        external_id,
        pushed_hash,
        last_result,
    ) in await _product_rows(session, connector, ids):
        outgoing = OutgoingProduct(
            product_id=product.id, sku=_sku(product), ean=product.ean, name=product.name or "",
            description=product.description, short_description=product.short_description,
            brand=brand, price=channel_price if channel_price is not None else product.price,
            cost_price=product.cost_price, stock=stock, weight=product.weight,
            is_active=product.is_active, external_id=external_id,
        )  # fmt: skip
        digest = content_hash(outgoing)
        up_to_date = last_result == "ok" and pushed_hash == digest and external_id is not None
        pending.append(Pending(outgoing, digest, up_to_date))
    return pending


async def stock_levels(
    session: AsyncSession, connector: Connector, ids: list[uuid.UUID]
) -> list[StockLevel]:
    """Quantities only; a product without a stock row has nothing to send."""
    return [
        StockLevel(product_id=p.id, sku=_sku(p), quantity=stock, external_id=external_id)
        for p, _brand, stock, _price, external_id, _hash, _result in await _product_rows(
            session, connector, ids
        )
        if stock is not None
    ]


async def price_levels(
    session: AsyncSession, connector: Connector, ids: list[uuid.UUID], currency: str
) -> list[PriceLevel]:
    """The channel price of the price list matching the connector's channel, else the base price."""
    levels: list[PriceLevel] = []
    for p, _brand, _stock, channel_price, external_id, _hash, _result in await _product_rows(
        session, connector, ids
    ):
        price = channel_price if channel_price is not None else p.price
        if price is not None:
            levels.append(PriceLevel(p.id, _sku(p), price, currency, external_id))
    return levels


async def _upsert_links(
    session: AsyncSession, rows: list[dict[str, Any]], columns: tuple[str, ...]
) -> None:
    if not rows:
        return
    statement = upsert(session, ConnectorProductLink)
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "connector_id", "product_id"],
        set_={c: statement.excluded[c] for c in columns},
    )
    await session.execute(statement, rows)


def _link_row(run: RunningJob, product_id: uuid.UUID, **values: Any) -> dict[str, Any]:
    base = {
        "id": uuid7(), "account_id": run.account_id, "connector_id": run.connector.id,
        "product_id": product_id, "external_id": None, "content_hash": None,
        "last_result": None, "last_message": None, "last_synced_at": None,
    }  # fmt: skip
    return {**base, **values}


async def record_links(
    session: AsyncSession, run: RunningJob, external_ids: dict[uuid.UUID, str]
) -> None:
    """Link products to the platform ids just learnt, before anything is sent again;
    their result and content hash come with the push's outcome."""
    await _upsert_links(
        session,
        [_link_row(run, pid, external_id=eid) for pid, eid in external_ids.items()],
        ("external_id",),
    )


async def record_push(
    session: AsyncSession,
    run: RunningJob,
    outcomes: list[ItemOutcome],
    hashes: dict[uuid.UUID, str],
    skipped: int,
) -> SyncJob:
    """Store each product's link and result (two statements per chunk), then the counters."""
    now = utcnow()
    ok = [
        _link_row(
            run,
            o.product_id,
            external_id=o.external_id,
            content_hash=hashes[o.product_id],
            last_result="ok",
            last_synced_at=now,
        )
        for o in outcomes
        if o.ok
    ]
    failed = [
        _link_row(run, o.product_id, last_result="error", last_message=o.error) for o in outcomes
        if not o.ok
    ]  # fmt: skip
    # A failure keeps the link and the hash of the last content that did arrive.
    await _upsert_links(
        session,
        ok,
        ("external_id", "content_hash", "last_result", "last_message", "last_synced_at"),
    )
    await _upsert_links(session, failed, ("last_result", "last_message"))
    # A product created before a later failure is linked all the same.
    await record_links(session, run, {o.product_id: o.external_id for o in outcomes
                                      if not o.ok and o.external_id})  # fmt: skip
    return await count_outcomes(session, run, outcomes, skipped=skipped)


async def count_outcomes(
    session: AsyncSession,
    run: RunningJob,
    outcomes: list[ItemOutcome],
    *,
    skipped: int = 0,
    created: int = 0,
) -> SyncJob:
    job = await session.get(SyncJob, run.id, populate_existing=True)
    assert job is not None
    failures = [o for o in outcomes if not o.ok]
    job.processed += len(outcomes) + skipped
    job.succeeded += len(outcomes) - len(failures)
    job.failed += len(failures)
    job.skipped += skipped
    job.created += created
    metrics.connector_items(
        run.connector.platform, ok=len(outcomes) - len(failures), failed=len(failures),
        skipped=skipped,
    )  # fmt: skip
    job.progressed_at = utcnow()
    if failures:
        job.last_error = failures[-1].error
    await session.flush()
    return job


def _caller_for(run: RunningJob, account: Account) -> Caller:
    """The job writes pulled products for its own account, as the connector."""
    return Caller(
        account_id=run.account_id, account_name=account.name, key_id=uuid.UUID(int=0),
        key_name=f"connector:{run.connector.name}", scopes=frozenset({"products:write"}),
        strict_ean=account.strict_ean,
    )  # fmt: skip


def _pulled_fields(remote: RemoteProduct) -> dict[str, Any]:
    values = {
        "ean": remote.ean, "name": remote.name, "reference": remote.sku,
        "description": remote.description, "brand_name": remote.brand, "price": remote.price,
        "stock": remote.stock, "weight": remote.weight, "is_active": remote.is_active,
    }  # fmt: skip
    return {k: v for k, v in values.items() if v is not None and v != ""}


async def record_pull(session: AsyncSession, run: RunningJob, page: list[RemoteProduct]) -> SyncJob:
    """Match by stored external id, then EAN (then SKU when there is no EAN), else create;
    one call of the product writer for the whole page."""
    external_ids = unique(r.external_id for r in page)
    linked = dict(
        (
            await session.execute(
                select(LINK.external_id, LINK.product_id).where(
                    LINK.account_id == run.account_id,
                    LINK.connector_id == run.connector.id,
                    LINK.external_id.in_(external_ids),
                )
            )
        ).all()
    )
    items = [WriteItem(_pulled_fields(r), target_id=linked.get(r.external_id)) for r in page]
    account = await session.get(Account, run.account_id)
    assert account is not None
    batch = await write_products(
        session, _caller_for(run, account), items=items,
        options=WriteOptions(mode="upsert", match_reference=True),
    )  # fmt: skip
    now = utcnow()
    links: dict[uuid.UUID, dict[str, Any]] = {}
    outcomes: list[ItemOutcome] = []
    for remote, result in zip(page, batch.results, strict=True):
        if result.ok and result.id is not None:
            links[result.id] = _link_row(
                run, result.id, external_id=remote.external_id, last_result="ok",
                last_synced_at=now,
            )  # fmt: skip
        message = "; ".join(str(e) for e in result.errors) or None
        outcomes.append(ItemOutcome(result.id or uuid.UUID(int=0), result.ok, error=message and
                                    f"{remote.external_id} : {message}"))  # fmt: skip
    await _upsert_links(
        session,
        list(links.values()),
        ("external_id", "last_result", "last_message", "last_synced_at"),
    )
    created = sum(1 for r in batch.results if r.status == "created")
    job = await count_outcomes(session, run, outcomes, created=created)
    job.total = job.processed
    return job


async def finish_job(
    session: AsyncSession, run: RunningJob, *, error: str | None = None
) -> SyncJob:
    """Completed (per-product failures are in the counters and links) or failed as a whole."""
    now = utcnow()
    values: dict[str, Any] = {"status": "failed" if error else "completed", "completed_at": now}
    if error:
        values["last_error"] = error
    # Compare and set, so that a cancel committed meanwhile stands.
    ended = await session.execute(
        update(SyncJob).where(SyncJob.id == run.id, SyncJob.status == "running").values(**values)
    )
    job = await session.get(SyncJob, run.id, populate_existing=True)
    connector = await session.get(Connector, run.connector.id, populate_existing=True)
    assert job is not None
    if ended.rowcount and connector is not None:  # type: ignore[attr-defined]
        connector.last_error = job.last_error
        if not error:
            connector.last_sync_at = now
    await session.flush()
    return job


async def fail_unexpectedly(
    session: AsyncSession, job_id: uuid.UUID, reference: str
) -> SyncJob | None:
    """End a job whose run kept failing on something other than the platform (a bug, a
    database that refuses): failed, with where it stopped and the reference under which
    the log has the details; None if it had ended already."""
    job = await session.get(SyncJob, job_id, populate_existing=True)
    if job is None or job.status not in RUNNABLE:
        return None
    job.status = "failed"
    job.completed_at = utcnow()
    job.last_error = (
        f"synchronisation interrompue par une erreur interne après {job.processed} produits "
        f"sur {job.total} (référence {reference})"
    )
    await session.flush()
    return job
