"""The audit trail: who did which administrative action on what, and when."""

import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JsonType, account_column, id_column
from pim.timeutil import utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        # Listing, newest first, per account (keyset on created_at, id).
        Index(None, "account_id", "created_at", "id"),
        # Retention: the oldest rows of every account.
        Index(None, "created_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    # The key that acted; None for the `pim` command run on the server. Not a foreign
    # key: the trail outlives the keys it names.
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    # The NAMES of the fields an action set or changed, never their values (secrets).
    changes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
