"""The outbox: change events written in the same transaction as the change."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JsonType, account_column
from pim.ids import uuid7
from pim.timeutil import utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index(None, "account_id", "seq"),)

    # The integer sequence orders delivery; the UUID is what receivers see.
    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), unique=True, default=uuid7)
    account_id: Mapped[uuid.UUID] = account_column(foreign_key=False)
    type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
