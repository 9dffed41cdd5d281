"""Connectors to commerce platforms, their sync jobs, and the per-product links they keep."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JsonType, account_column, id_column
from pim.timeutil import utcnow


class Connector(Base):
    __tablename__ = "connectors"
    __table_args__ = (Index(None, "account_id", "platform", "created_at"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    name: Mapped[str] = mapped_column(String(255))
    platform: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    base_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    channel: Mapped[str | None] = mapped_column(String(64), default=None)
    options: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # A Fernet token of the JSON credentials; never returned, never logged.
    credentials: Mapped[str | None] = mapped_column(Text, default=None)
    # The names of the credential fields that are set, so responses can show them
    # without decrypting anything.
    credential_fields: Mapped[list[str]] = mapped_column(JsonType, default=list)
    last_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncJob(Base):
    __tablename__ = "sync_jobs"
    __table_args__ = (Index(None, "account_id", "connector_id", "created_at"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    connector_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(
        String(32)
    )  # push-products | pull-products | push-stock | push-prices
    status: Mapped[str] = mapped_column(String(16), default="queued")
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    succeeded: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # Unchanged since the last successful push: not sent again.
    skipped: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    product_ids: Mapped[list[str] | None] = mapped_column(JsonType, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the run last counted a chunk: see ImportJob.progressed_at.
    progressed_at: Mapped[datetime | None] = mapped_column(default=None)


class ConnectorProductLink(Base):
    """What one connector knows of one product: the platform's id, the last push and its result."""

    __tablename__ = "connector_product_links"
    __table_args__ = (
        UniqueConstraint("account_id", "connector_id", "product_id"),
        Index(None, "account_id", "connector_id", "external_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    connector_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # Hash of the content last pushed successfully; a push sends only what differs.
    content_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    last_result: Mapped[str | None] = mapped_column(String(8), default=None)  # ok | error
    last_message: Mapped[str | None] = mapped_column(Text, default=None)
    last_synced_at: Mapped[datetime | None] = mapped_column(default=None)
