"""File imports: the job, its uploaded file, and its per-row logs."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JsonType, account_column, id_column
from pim.timeutil import utcnow


class ImportJob(Base):
    __tablename__ = "import_jobs"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[uuid.UUID] = id_column()
    account_id: Mapped[uuid.UUID] = account_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    file_name: Mapped[str] = mapped_column(String(255))
    file_type: Mapped[str] = mapped_column(String(8))
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    supplier_code: Mapped[str | None] = mapped_column(String(64), default=None)
    dry_run: Mapped[bool] = mapped_column(default=False)
    # upsert, create_only or update_only
    mode: Mapped[str] = mapped_column(String(16), default="upsert")
    # File column -> product field; None: headers are mapped automatically.
    mapping: Mapped[dict[str, str] | None] = mapped_column(JsonType, default=None)
    total_rows: Mapped[int] = mapped_column(default=0)
    successful_rows: Mapped[int] = mapped_column(default=0)
    failed_rows: Mapped[int] = mapped_column(default=0)
    products_created: Mapped[int] = mapped_column(default=0)
    products_updated: Mapped[int] = mapped_column(default=0)
    # Data rows already committed: a re-run job continues after them.
    checkpoint: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    error_summary: Mapped[str | None] = mapped_column(Text, default=None)
    # Set when an automation started the job; no FK so imports do not depend on automations.
    automation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When a run last moved the job (started, analysed, committed a chunk): the
    # watchdog reports a running job that has not moved for too long.
    progressed_at: Mapped[datetime | None] = mapped_column(default=None)


class ImportFilePart(Base):
    """The uploaded bytes, in the database so that every worker can read them.

    Stored in parts so that neither the API storing a file nor a worker reading it
    ever holds the whole file; a table of its own so that listing jobs never loads
    file contents.
    """

    __tablename__ = "import_file_parts"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportLog(Base):
    __tablename__ = "import_logs"
    __table_args__ = (Index(None, "job_id", "level", "seq"),)

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    row_number: Mapped[int | None] = mapped_column(default=None)
    level: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(255), default=None)
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text, default=None)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
