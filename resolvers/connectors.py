"""Connectors: reading, creating, updating, deleting and testing them, scoped to the account.

Credentials are encrypted at rest (Fernet, rotatable keys) and never leave this
module in clear except inside the ConnectorConfig handed to an adapter; responses
only name the credential fields that are set.
"""

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import PLATFORMS, ConnectorConfig, PlatformAdapter, adapter_for
from connectors.http import LOCAL_BUCKETS, Buckets, PlatformError, PlatformHttp, RetryPolicy
from models import Connector, ConnectorProductLink, Product
from pim import outbound
from pim.auth import Caller
from pim.crypto import cipher_for
from pim.outbound import OutboundBlocked, OutboundPolicy
from pim.settings import Settings
from pim.timeutil import utcnow
from resolvers import audit
from resolvers.bounds import SECRET_MAX, JsonBounded, check_text, check_window
from resolvers.changes import LATEST, WITH_CHANGES
from resolvers.errors import FieldError, NotFound, ValidationFailed
from resolvers.permissions import Operation, require
from resolvers.validation import parse

# Managing connectors implies seeing them.
MAX_PAGE_SIZE = 100
Status = Literal["active", "inactive"]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class ConnectorFields(BaseModel):
    """The writable fields of a connector; absent means 'not given' (see model_fields_set)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    platform: Annotated[str, Field(max_length=32)] | None = None
    status: Status | None = None
    base_url: Annotated[str, Field(max_length=2048)] | None = None
    channel: Annotated[str, Field(max_length=64)] | None = None
    options: Annotated[dict[str, Any], JsonBounded] | None = None
    # A null value removes that credential field on update.
    credentials: (
        Annotated[dict[str, Annotated[str, Field(max_length=SECRET_MAX)] | None], JsonBounded]
        | None
    ) = None


@dataclass(frozen=True, slots=True)
class SyncStats:
    products_synced: int
    products_pending: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ConnectorPage:
    connectors: list[Connector]
    total: int
    stats: dict[uuid.UUID, SyncStats]


@dataclass(frozen=True, slots=True)
class TestResult:
    success: bool
    platform: str
    latency_ms: int
    message: str


def _scoped(caller: Caller, platform: str | None) -> Any:
    statement = select(Connector).where(Connector.account_id == caller.account_id)
    if platform is not None:
        statement = statement.where(Connector.platform == platform)
    return statement


def _not_found(connector_id: uuid.UUID) -> NotFound:
    return NotFound(message=f"Connecteur '{connector_id}' introuvable.", field="connector_id")


async def list_connectors(
    session: AsyncSession,
    caller: Caller,
    *,
    platform: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ConnectorPage:
    require(caller, Operation.CONNECTORS_READ)
    check_window(limit, offset, MAX_PAGE_SIZE, offset_field="offset")
    check_text("platform", platform, 32)
    statement = _scoped(caller, platform)
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = list(
        await session.scalars(
            statement.order_by(Connector.created_at, Connector.id).limit(limit).offset(offset)
        )
    )
    stats = await sync_stats_for(session, caller.account_id, rows)
    return ConnectorPage(connectors=rows, total=int(total or 0), stats=stats)


async def load_connector(
    session: AsyncSession, caller: Caller, connector_id: uuid.UUID, platform: str | None = None
) -> Connector:
    connector = await session.scalar(_scoped(caller, platform).where(Connector.id == connector_id))
    if connector is None:
        raise _not_found(connector_id)
    return connector


async def get_connector(
    session: AsyncSession, caller: Caller, *, id: uuid.UUID, platform: str | None = None
) -> Connector:
    require(caller, Operation.CONNECTORS_READ)
    return await load_connector(session, caller, id, platform)


async def sync_stats_for(
    session: AsyncSession, account_id: uuid.UUID, connector_list: list[Connector]
) -> dict[uuid.UUID, SyncStats]:
    """Synced: live products whose last push or pull succeeded and which have not changed
    since. Pending: every other live product of the account. Two queries for any number."""
    if not connector_list:
        return {}
    link = ConnectorProductLink
    live = await session.scalar(
        select(func.count())
        .select_from(Product)
        .where(Product.account_id == account_id, Product.deleted_at.is_(None))
    )
    synced = dict(
        (
            await session.execute(
                select(link.connector_id, func.count())
                .select_from(link)
                .join(WITH_CHANGES, Product.id == link.product_id)
                .where(
                    link.account_id == account_id,
                    link.connector_id.in_([c.id for c in connector_list]),
                    link.last_result == "ok",
                    Product.deleted_at.is_(None),
                    # A stock or price change since the sync leaves the product pending.
                    link.last_synced_at >= LATEST,
                )
                .group_by(link.connector_id)
            )
        ).all()
    )
    return {
        c.id: SyncStats(
            products_synced=synced.get(c.id, 0),
            products_pending=int(live or 0) - synced.get(c.id, 0),
            last_error=c.last_error,
        )
        for c in connector_list
    }


async def sync_stats(session: AsyncSession, connector: Connector) -> SyncStats:
    return (await sync_stats_for(session, connector.account_id, [connector]))[connector.id]


def _check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        known = ", ".join(sorted(PLATFORMS))
        raise ValidationFailed.of(
            [FieldError("platform", f"plateforme inconnue : {platform} (connues : {known})")]
        )


async def _checked_base_url(fields: ConnectorFields, settings: Settings) -> ConnectorFields:
    """The fields with their base URL checked against the outbound guard, as the spec says
    ("External URLs are validated against an SSRF allowlist"); checked again at connect time."""
    if not fields.base_url:
        return fields
    try:
        url = await outbound.check_url(fields.base_url, OutboundPolicy.from_settings(settings))
    except OutboundBlocked as exc:
        raise ValidationFailed.of([FieldError("base_url", str(exc))]) from exc
    return fields.model_copy(update={"base_url": url.rstrip("/")})


async def _fields(data: dict[str, Any], settings: Settings) -> ConnectorFields:
    fields, errors = parse(ConnectorFields, data)
    if fields is None:
        raise ValidationFailed.of(errors)
    return await _checked_base_url(fields, settings)


def _apply(
    connector: Connector, fields: ConnectorFields, settings: Settings, current: dict[str, str]
) -> None:
    given = fields.model_fields_set
    if "name" in given:
        if not fields.name:
            raise ValidationFailed.of([FieldError("name", "champ obligatoire", "missing")])
        connector.name = fields.name
    if "status" in given and fields.status is not None:
        connector.status = fields.status
    if "base_url" in given:
        connector.base_url = fields.base_url or None
    if "channel" in given:
        connector.channel = fields.channel or None
    if "options" in given:
        connector.options = fields.options or {}
    if "credentials" in given:
        merged = dict(current)
        for name, value in (fields.credentials or {}).items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        connector.credentials = (
            cipher_for(settings).encrypt(orjson.dumps(merged).decode()) if merged else None
        )
        connector.credential_fields = sorted(merged)


def credentials_of(connector: Connector, settings: Settings) -> dict[str, str]:
    if not connector.credentials:
        return {}
    value: dict[str, str] = orjson.loads(cipher_for(settings).decrypt(connector.credentials))
    return value


async def create_connector(
    session: AsyncSession,
    caller: Caller,
    *,
    settings: Settings,
    data: dict[str, Any],
    platform: str | None = None,
) -> Connector:
    require(caller, Operation.SETTINGS_MANAGE)
    fields = await _fields(data, settings)
    chosen = platform or fields.platform
    missing = [
        FieldError(name, "champ obligatoire", "missing")
        for name, value in (("name", fields.name), ("platform", chosen))
        if not value
    ]
    if missing:
        raise ValidationFailed.of(missing)
    assert chosen is not None
    if platform is not None and fields.platform not in (None, platform):
        raise ValidationFailed.of([FieldError("platform", f"ce module gère {platform}")])
    _check_platform(chosen)
    now = utcnow()
    connector = Connector(
        id=uuid.uuid4(), account_id=caller.account_id, name="", platform=chosen,
        status="active", options={}, credential_fields=[], created_at=now, updated_at=now,
    )  # fmt: skip
    _apply(connector, fields, settings, {})
    session.add(connector)
    await session.flush()
    audit.record(session, caller, "connector.created", connector, fields.model_fields_set)
    return connector


async def update_connector(
    session: AsyncSession,
    caller: Caller,
    *,
    settings: Settings,
    id: uuid.UUID,
    data: dict[str, Any],
    platform: str | None = None,
) -> Connector:
    require(caller, Operation.SETTINGS_MANAGE)
    fields = await _fields(data, settings)
    connector = await load_connector(session, caller, id, platform)
    if "platform" in fields.model_fields_set and fields.platform != connector.platform:
        raise ValidationFailed.of(
            [FieldError("platform", "la plateforme d'un connecteur ne change pas")]
        )
    _apply(connector, fields, settings, credentials_of(connector, settings))
    connector.updated_at = utcnow()
    await session.flush()
    audit.record(session, caller, "connector.updated", connector, fields.model_fields_set)
    return connector


async def delete_connector(
    session: AsyncSession, caller: Caller, *, id: uuid.UUID, platform: str | None = None
) -> uuid.UUID:
    require(caller, Operation.SETTINGS_MANAGE)
    connector = await load_connector(session, caller, id, platform)
    audit.record(session, caller, "connector.deleted", connector)
    await session.delete(connector)
    await session.flush()
    return id


def config_for(connector: Connector, settings: Settings) -> ConnectorConfig:
    options = dict(connector.options or {})
    return ConnectorConfig(
        platform=connector.platform,
        base_url=connector.base_url,
        credentials=credentials_of(connector, settings),
        connector_id=str(connector.id),
        options=options,
        channel=connector.channel,
        currency=str(options.get("currency", "EUR")),
        async_wait_seconds=settings.connector_async_wait_seconds,
        poll_interval_seconds=settings.connector_poll_interval_seconds,
    )


@asynccontextmanager
async def open_adapter(
    config: ConnectorConfig,
    settings: Settings,
    *,
    retries: bool = True,
    buckets: Buckets | None = None,
) -> AsyncIterator[PlatformAdapter]:
    """An adapter whose every request goes through the outbound guard; with `retries`,
    transient failures are retried per request (sync jobs), else answered at once
    (a connection test, which a person is waiting for). Requests are paced in
    `buckets` (the runtime's, shared by every worker), else in this process."""
    async with outbound.client(timeout=settings.connector_timeout_seconds) as client:
        http = PlatformHttp(
            client, OutboundPolicy.from_settings(settings),
            retry=RetryPolicy.from_settings(settings) if retries else None,
            buckets=buckets or LOCAL_BUCKETS,
        )  # fmt: skip
        yield adapter_for(config, http)


async def config_to_test(
    session: AsyncSession,
    caller: Caller,
    *,
    settings: Settings,
    id: uuid.UUID,
    platform: str | None = None,
) -> ConnectorConfig:
    """The first half of a connection test: permission and configuration, from the database."""
    require(caller, Operation.SETTINGS_MANAGE)
    return config_for(await load_connector(session, caller, id, platform), settings)


async def test_connector(config: ConnectorConfig, *, settings: Settings) -> TestResult:
    """The second half, outside any transaction (a platform may take seconds to answer and
    must not hold a database connection): authentication and reachability only."""
    started = time.perf_counter()
    try:
        async with open_adapter(config, settings, retries=False) as adapter:
            description = await adapter.test()
        success = True
        message = f"Connection successful{f' ({description})' if description else ''}"
    except PlatformError as exc:
        success, message = False, exc.message
    latency = int((time.perf_counter() - started) * 1000)
    return TestResult(
        success=success, platform=config.platform, latency_ms=latency, message=message
    )
