"""Scheduled imports: where a supplier's file is fetched from, when, and how it went last."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JsonType, account_column, id_column
from pim.timeutil import utcnow


class Automation(Base):
    __tablename__ = "automations"
    __table_args__ = (
        Index(None, "account_id", "created_at"),
        # The scheduler's scan: active automations whose next fire time has come.
        Index(None, "is_active", "next_run_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    name: Mapped[str] = mapped_column(String(255))
    supplier_code: Mapped[str | None] = mapped_column(String(64), default=None)
    schedule: Mapped[str] = mapped_column(String(120))
    source_type: Mapped[str] = mapped_column(String(8))
    source_host: Mapped[str | None] = mapped_column(String(255), default=None)
    source_port: Mapped[int | None] = mapped_column(default=None)
    source_username: Mapped[str | None] = mapped_column(String(255), default=None)
    source_path: Mapped[str | None] = mapped_column(Text(), default=None)
    source_url: Mapped[str | None] = mapped_column(Text(), default=None)
    # Fernet tokens (pim.crypto): the clear values never leave the run job.
    password_encrypted: Mapped[str | None] = mapped_column(Text(), default=None)
    private_key_encrypted: Mapped[str | None] = mapped_column(Text(), default=None)
    # SFTP: the server's public key (OpenSSH line); when set, no other key is accepted.
    host_key: Mapped[str | None] = mapped_column(Text(), default=None)
    mapping: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    # The scheduled time the last run was started for (None for a manual run).
    last_fire_at: Mapped[datetime | None] = mapped_column(default=None)
    next_run_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    last_error: Mapped[str | None] = mapped_column(Text(), default=None)
    last_import_job_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
