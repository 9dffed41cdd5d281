"""Webhook endpoints, their deliveries of outbox events, and every delivery attempt."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JsonType, account_column, id_column
from pim.timeutil import utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    url: Mapped[str] = mapped_column(Text())
    description: Mapped[str | None] = mapped_column(String(255), default=None)
    # Event types to deliver; ["*"] means every type.
    event_types: Mapped[list[str]] = mapped_column(JsonType, default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Fernet tokens (pim.crypto): the signing secret is shown once, never stored in clear.
    secret_encrypted: Mapped[str] = mapped_column(Text())
    # During a rotation the replaced secret keeps signing until it expires.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text(), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(Text(), default=None)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # Start of the current run of failed attempts; cleared by a success.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    # The last event sequence number dispatched to this endpoint: the next run starts after it.
    last_event_seq: Mapped[int] = mapped_column(BigInteger(), default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "endpoint_id", "event_seq"),
        # The ordering check: is an earlier delivery of this product still open?
        Index(None, "endpoint_id", "subject_id", "event_seq"),
        # The due-delivery scan: pending or retrying deliveries by time.
        Index(None, "status", "next_attempt_at"),
        Index(None, "account_id", "created_at"),
        # Retention removes old deliveries of every account, oldest first.
        Index(None, "created_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_seq: Mapped[int] = mapped_column(
        BigInteger(), ForeignKey("events.seq", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(64))
    # Copied from the event: deliveries of one subject to one endpoint go out in order.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # pending (never tried) | failed (retry scheduled) | succeeded | dead (retries exhausted)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    is_replay: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    # Also the lease of a claimed delivery: a crashed sender's claim simply expires.
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text(), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "attempt"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column()
    status_code: Mapped[int | None] = mapped_column(default=None)
    latency_ms: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text(), default=None)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDispatchState(Base):
    """One row: how far the outbox is known to be complete, for every endpoint's cursor.

    Sequence numbers are taken at insert but become visible at commit, so a
    transaction holding seq 10 may commit after one holding seq 11. An endpoint's
    cursor never moves past `safe_seq`: the highest seq such that every
    transaction that could still hold a lower one has ended. `pending_seq` is the
    highest seq seen at `pending_at`; it becomes safe once every writer open at
    that instant is gone (pim.clock.stable_horizon passes it).
    """

    __tablename__ = "webhook_dispatch_state"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    safe_seq: Mapped[int] = mapped_column(BigInteger(), default=0)
    pending_seq: Mapped[int] = mapped_column(BigInteger(), default=0)
    pending_at: Mapped[datetime | None] = mapped_column(default=None)
