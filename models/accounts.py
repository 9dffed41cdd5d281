"""Tenants and the API keys that act for them."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JsonType, id_column
from pim.timeutil import utcnow


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = id_column()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # A wrong EAN check digit is flagged by default; strict accounts reject it.
    strict_ean: Mapped[bool] = mapped_column(default=False)
    # Its keys run only persisted GraphQL operations (`pim graphql persisted-only`), as
    # the deployment-wide PIM_GRAPHQL_PERSISTED_ONLY does for every account.
    graphql_persisted_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    # The first characters of the key, shown in listings so people can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(24))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Written at most once a minute per key (resolvers.keys.LAST_USED_RESOLUTION).
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Refused from this time on, like a revoked key; also the end of a rotation's grace.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class ProductCountDelta(Base):
    """Changes to an account's live product count, one row per writing transaction.

    Unfiltered lists need an exact total, and counting a million rows on every page
    request is what made them slow. A single counter row would be locked by every
    writer until it commits, serialising all writes of an account; appended deltas
    lock nothing, and are folded into one row from time to time.
    """

    __tablename__ = "product_count_deltas"
    __table_args__ = (Index(None, "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    delta: Mapped[int]
