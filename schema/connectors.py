"""GraphQL types, queries, mutations and the progress subscription for connectors and syncs."""

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from models import Connector as ConnectorModel
from models import SyncJob as SyncJobModel
from pim.auth import Caller
from pim.db import DbSession
from pim.timeutil import parse_iso8601
from resolvers import connectors, job_progress, sync
from resolvers.connectors import SyncStats as SyncStatsValue
from resolvers.errors import DomainError, NotFound
from schema.context import Info, graphql_error, parse_id, subscription_caller
from schema.errors import UserError, run_mutation, run_query, user_errors
from schema.execution import shared_payload


@strawberry.enum(description="What a sync job does.")
class SyncKind(Enum):
    PUSH_PRODUCTS = "push-products"
    PULL_PRODUCTS = "pull-products"
    PUSH_STOCK = "push-stock"
    PUSH_PRICES = "push-prices"


@strawberry.type(description="How far a connector's platform is in step with the catalog.")
class SyncStats:
    products_synced: int = strawberry.field(
        description="Live products whose last push or pull succeeded, unchanged since."
    )
    products_pending: int = strawberry.field(
        description="Live products never synced, changed since, or whose last push failed."
    )
    last_error: str | None

    @classmethod
    def from_value(cls, stats: SyncStatsValue) -> "SyncStats":
        return cls(
            products_synced=stats.products_synced,
            products_pending=stats.products_pending,
            last_error=stats.last_error,
        )


@strawberry.type(description="A connection to one store or account on a commerce platform.")
class Connector:
    id: strawberry.ID
    name: str
    platform: str
    status: str = strawberry.field(description="active or inactive.")
    base_url: str | None
    channel: str | None = strawberry.field(
        description="Sales channel: the price list of this channel gives the pushed prices."
    )
    options: JSON
    credential_fields: list[str] = strawberry.field(
        description="Names of the credential fields that are set; values are never returned."
    )
    sync_stats: SyncStats
    last_sync_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, c: ConnectorModel, stats: SyncStatsValue) -> "Connector":
        return cls(
            id=strawberry.ID(str(c.id)), name=c.name, platform=c.platform, status=c.status,
            base_url=c.base_url, channel=c.channel, options=cast(JSON, c.options or {}),
            credential_fields=list(c.credential_fields or []),
            sync_stats=SyncStats.from_value(stats), last_sync_at=c.last_sync_at,
            created_at=c.created_at, updated_at=c.updated_at,
        )  # fmt: skip


@strawberry.type(description="One sync run of a connector and its counters.")
class SyncJob:
    id: strawberry.ID
    connector_id: strawberry.ID
    kind: SyncKind
    status: str = strawberry.field(description="queued, running, completed, failed or cancelled.")
    total: int
    processed: int
    succeeded: int
    failed: int
    skipped: int = strawberry.field(description="Unchanged since the last successful push.")
    created: int = strawberry.field(description="Products created by a pull.")
    last_error: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_model(cls, job: SyncJobModel) -> "SyncJob":
        return cls.from_state(sync.progress_state(job), created_at=job.created_at)

    @classmethod
    def from_state(cls, state: dict[str, Any], created_at: datetime | None = None) -> "SyncJob":
        def when(name: str) -> datetime | None:
            return parse_iso8601(state[name]) if state.get(name) else None

        return cls(
            id=strawberry.ID(state["id"]), connector_id=strawberry.ID(state["connector_id"]),
            kind=SyncKind(state["kind"]), status=state["status"], total=state["total"],
            processed=state["processed"], succeeded=state["succeeded"], failed=state["failed"],
            skipped=state["skipped"], created=state["created"], last_error=state["last_error"],
            created_at=created_at, started_at=when("started_at"),
            completed_at=when("completed_at"),
        )  # fmt: skip


@strawberry.type
class ConnectorList:
    nodes: list[Connector]
    total_count: int


@strawberry.input(description="Connector fields. Omitted fields are left as they are.")
class ConnectorInput:
    name: str | None = strawberry.UNSET
    platform: str | None = strawberry.UNSET
    status: str | None = strawberry.UNSET
    base_url: str | None = strawberry.UNSET
    channel: str | None = strawberry.UNSET
    options: JSON | None = strawberry.UNSET
    credentials: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="Credential fields to set (a null value removes one); stored encrypted.",
    )


def _fields(value: ConnectorInput) -> dict[str, Any]:
    return {k: v for k, v in vars(value).items() if v is not strawberry.UNSET}


@strawberry.type
class ConnectorPayload:
    connector: Connector | None
    errors: list[UserError]


@strawberry.type
class DeleteConnectorPayload:
    deleted_id: strawberry.ID | None
    errors: list[UserError]


@strawberry.type(description="The result of a connection test; nothing is synced.")
class ConnectorTest:
    success: bool
    platform: str
    latency_ms: int
    message: str


@strawberry.type
class ConnectorTestPayload:
    result: ConnectorTest | None
    errors: list[UserError]


@strawberry.type
class SyncJobPayload:
    job: SyncJob | None
    products_queued: int | None = strawberry.field(
        default=None, description="Products to push (push-products only)."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _connector_with_stats(session: Any, caller: Any, *, id: uuid.UUID) -> Any:
    try:
        found = await connectors.get_connector(session, caller, id=id)
    except NotFound:
        return None  # absent or another account's: null, like `product`
    return found, await connectors.sync_stats(session, found)


@strawberry.type
class ConnectorQuery:
    @strawberry.field(description="The account's connectors, oldest first.")
    async def connectors(
        self, info: Info, platform: str | None = None, first: int = 50, offset: int = 0
    ) -> ConnectorList:
        page = await run_query(
            info, connectors.list_connectors, platform=platform,
            limit=first, offset=offset,
        )  # fmt: skip
        return ConnectorList(
            nodes=[Connector.from_model(c, page.stats[c.id]) for c in page.connectors],
            total_count=page.total,
        )

    @strawberry.field(description="One connector with its sync status.")
    async def connector(self, info: Info, id: strawberry.ID) -> Connector | None:
        found = await run_query(info, _connector_with_stats, id=parse_id(id))
        return Connector.from_model(*found) if found else None

    @strawberry.field(description="One sync job.")
    async def sync_job(self, info: Info, id: strawberry.ID) -> SyncJob:
        return SyncJob.from_model(await run_query(info, sync.get_sync_job, id=parse_id(id)))

    @strawberry.field(description="A connector's latest sync jobs, newest first.")
    async def sync_jobs(
        self, info: Info, connector_id: strawberry.ID, first: int = 20
    ) -> list[SyncJob]:
        jobs = await run_query(
            info, sync.list_sync_jobs, connector_id=parse_id(connector_id, "connectorId"),
            limit=first,
        )  # fmt: skip
        return [SyncJob.from_model(j) for j in jobs]


async def _start(
    info: Info, connector_id: strawberry.ID, kind: SyncKind, product_ids: list[Any] | None = None
) -> SyncJobPayload:
    queued, errors = await run_mutation(
        info,
        lambda s, caller: sync.start_sync(
            s, caller, connector_id=parse_id(connector_id, "connectorId"), kind=kind.value,
            product_ids=product_ids,
        ),
    )  # fmt: skip
    if queued is None:
        return SyncJobPayload(job=None, errors=errors)
    return SyncJobPayload(
        job=SyncJob.from_model(queued.job), products_queued=queued.products_queued, errors=[]
    )


async def _save(info: Info, resolver: Any, **kwargs: Any) -> ConnectorPayload:
    """Create or update, then answer with the connector and its sync stats."""

    async def body(session: DbSession, caller: Caller) -> Connector:
        saved = await resolver(session, caller, settings=info.context.runtime.settings, **kwargs)
        return Connector.from_model(saved, await connectors.sync_stats(session, saved))

    connector, errors = await run_mutation(info, body)
    return ConnectorPayload(connector=connector, errors=errors)


@strawberry.type
class ConnectorMutation:
    @strawberry.mutation(description="Create a connector (settings:manage).")
    async def create_connector(self, info: Info, input: ConnectorInput) -> ConnectorPayload:
        return await _save(info, connectors.create_connector, data=_fields(input))

    @strawberry.mutation(description="Update a connector's given fields (settings:manage).")
    async def update_connector(
        self, info: Info, id: strawberry.ID, input: ConnectorInput
    ) -> ConnectorPayload:
        return await _save(info, connectors.update_connector, id=parse_id(id), data=_fields(input))

    @strawberry.mutation(description="Delete a connector, its sync jobs and links.")
    async def delete_connector(self, info: Info, id: strawberry.ID) -> DeleteConnectorPayload:
        deleted, errors = await run_mutation(
            info, lambda s, caller: connectors.delete_connector(s, caller, id=parse_id(id))
        )
        return DeleteConnectorPayload(
            deleted_id=strawberry.ID(str(deleted)) if deleted else None, errors=errors
        )

    @strawberry.mutation(description="Test authentication and reachability; syncs nothing.")
    async def test_connector(self, info: Info, id: strawberry.ID) -> ConnectorTestPayload:
        settings = info.context.runtime.settings
        config, errors = await run_mutation(
            info,
            lambda s, caller: connectors.config_to_test(
                s, caller, settings=settings, id=parse_id(id)
            ),
        )
        if config is None:
            return ConnectorTestPayload(result=None, errors=errors)
        # The platform is called outside the transaction: nothing waits on it meanwhile.
        result, errors = await user_errors(
            lambda: connectors.test_connector(config, settings=settings)
        )
        if result is None:
            return ConnectorTestPayload(result=None, errors=errors)
        tested = ConnectorTest(success=result.success, platform=result.platform,
                               latency_ms=result.latency_ms, message=result.message)  # fmt: skip
        return ConnectorTestPayload(result=tested, errors=[])

    @strawberry.mutation(description="Push products (all, or the given ids) in chunks of 100.")
    async def push_products(
        self,
        info: Info,
        connector_id: strawberry.ID,
        product_ids: list[strawberry.ID] | None = None,
    ) -> SyncJobPayload:
        ids = [str(i) for i in product_ids] if product_ids is not None else None
        return await _start(info, connector_id, SyncKind.PUSH_PRODUCTS, ids)

    @strawberry.mutation(
        description="Pull products: matched by external id, then EAN; else created."
    )
    async def pull_products(self, info: Info, connector_id: strawberry.ID) -> SyncJobPayload:
        return await _start(info, connector_id, SyncKind.PULL_PRODUCTS)

    @strawberry.mutation(description="Push stock quantities.")
    async def push_stock(self, info: Info, connector_id: strawberry.ID) -> SyncJobPayload:
        return await _start(info, connector_id, SyncKind.PUSH_STOCK)

    @strawberry.mutation(description="Push prices: the channel's price list, else base prices.")
    async def push_prices(self, info: Info, connector_id: strawberry.ID) -> SyncJobPayload:
        return await _start(info, connector_id, SyncKind.PUSH_PRICES)

    @strawberry.mutation(description="Cancel a queued or running sync job (after its chunk).")
    async def cancel_sync_job(self, info: Info, id: strawberry.ID) -> SyncJobPayload:
        job, errors = await run_mutation(
            info, lambda s, caller: sync.cancel_sync_job(s, caller, id=parse_id(id))
        )
        return SyncJobPayload(job=SyncJob.from_model(job) if job else None, errors=errors)


@strawberry.type
class ConnectorSubscription:
    @strawberry.subscription(
        description="A sync job's progress: its current state, then every change to the end. "
        'Authenticate with {"X-API-Key": …} in connection_init.'
    )
    async def sync_job_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[SyncJob, None]:
        runtime = info.context.runtime
        try:
            caller = await subscription_caller(info)
            job_id = parse_id(id)
            # The states a worker publishes do not carry it.
            async with runtime.db.read() as session:
                created_at = (await sync.get_sync_job(session, caller, id=job_id)).created_at
            states = job_progress.watch(
                runtime.db, runtime.broker, caller, job_progress.SYNCS, job_id
            )
            async for state in states:
                yield shared_payload(SyncJob.from_state, state, created_at)
        except DomainError as exc:
            raise graphql_error(exc) from exc
