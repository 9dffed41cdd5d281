"""Retention: what jobs leave behind ages out.

Each rule names rows older than its setting; `remove_batch` removes up to a batch of
them in the caller's transaction, so a run is many short transactions and never holds
locks for long (PostgreSQL: only the rows of the batch; SQLite: the write lock for one
batch). Ages are counted from when the thing ended: a delivery's creation (its retries
end within two days), an import's or sync's completion, a dry run's readiness.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEvent, ImportFilePart, ImportJob, ImportLog, SyncJob, WebhookDelivery
from pim.settings import Settings
from resolvers import sync

# Deliveries no longer being tried (webhook_delivery.OPEN_STATUSES are).
_DELIVERY_ENDED = ("succeeded", "dead")
# Imports whose file nobody will read again ("ready" is a dry run awaiting its confirm,
# "paused" may resume).
_IMPORT_ENDED = ("completed", "failed", "cancelled")
UPLOAD_EXPIRED_MESSAGE = "fichier supprimé : l'import n'a pas été confirmé à temps"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    description: str
    setting: str  # the Settings field giving its age in days

    def cutoff(self, settings: Settings, now: datetime) -> datetime:
        return now - timedelta(days=float(getattr(settings, self.setting)))


RULES = (
    Rule("webhook_deliveries", "webhook deliveries and their attempts",
         "retention_webhook_delivery_days"),
    Rule("import_logs", "row logs of finished imports", "retention_import_log_days"),
    Rule("import_files", "files of finished imports", "retention_import_file_days"),
    Rule("uploads", "files of dry runs never confirmed (the job is cancelled)",
         "retention_upload_days"),
    Rule("sync_jobs", "finished connector sync jobs", "retention_sync_job_days"),
    Rule("audit_events", "audit trail of administrative actions", "audit_retention_days"),
)  # fmt: skip


def _finished_imports(cutoff: datetime, statuses: Sequence[str]) -> Select[uuid.UUID]:
    return select(ImportJob.id).where(
        ImportJob.status.in_(statuses), ImportJob.completed_at < cutoff
    )


def _with_file(jobs: Select[uuid.UUID]) -> Select[uuid.UUID]:
    has_file = select(ImportFilePart.job_id).where(ImportFilePart.job_id == ImportJob.id).exists()
    return jobs.where(has_file)


def _due(rule: str, cutoff: datetime) -> Select[Any]:
    """The keys of the rows `rule` removes (for files: the jobs whose file goes)."""
    if rule == "webhook_deliveries":
        return select(WebhookDelivery.id).where(
            WebhookDelivery.status.in_(_DELIVERY_ENDED), WebhookDelivery.created_at < cutoff
        )
    if rule == "import_logs":
        jobs = _finished_imports(cutoff, (*_IMPORT_ENDED, "ready"))
        return select(ImportLog.seq).where(ImportLog.job_id.in_(jobs))
    if rule == "import_files":
        return _with_file(_finished_imports(cutoff, _IMPORT_ENDED))
    if rule == "uploads":
        return _with_file(_finished_imports(cutoff, ("ready",)))
    if rule == "sync_jobs":
        return select(SyncJob.id).where(
            SyncJob.status.in_(sync.FINAL), SyncJob.completed_at < cutoff
        )
    if rule == "audit_events":
        return select(AuditEvent.id).where(AuditEvent.created_at < cutoff)
    raise ValueError(f"unknown retention rule {rule!r}")


async def count_due(session: AsyncSession, rule: Rule, *, settings: Settings, now: datetime) -> int:
    """How many rows (jobs, for files) the rule would remove now: the dry run."""
    due = _due(rule.name, rule.cutoff(settings, now)).subquery()
    return int(await session.scalar(select(func.count()).select_from(due)) or 0)


async def remove_batch(
    session: AsyncSession, rule: Rule, *, settings: Settings, now: datetime
) -> int:
    """Remove up to a batch of what the rule says is too old; how many went."""
    limit = settings.retention_batch_size
    if rule.name in ("import_files", "uploads"):
        # A file is many parts of up to a few megabytes: a batch is a few files.
        limit = max(1, limit // 100)
    keys = list(await session.scalars(_due(rule.name, rule.cutoff(settings, now)).limit(limit)))
    if not keys:
        return 0
    if rule.name == "webhook_deliveries":
        # Attempts go with their delivery (ON DELETE CASCADE).
        await session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(keys)))
    elif rule.name == "import_logs":
        await session.execute(delete(ImportLog).where(ImportLog.seq.in_(keys)))
    elif rule.name == "sync_jobs":
        await session.execute(delete(SyncJob).where(SyncJob.id.in_(keys)))
    elif rule.name == "audit_events":
        await session.execute(delete(AuditEvent).where(AuditEvent.id.in_(keys)))
    else:
        if rule.name == "uploads":
            # Without its file a dry run can no longer be confirmed: it is cancelled first,
            # by compare-and-set, so a confirm landing meanwhile keeps its file.
            cancelled = await session.scalars(
                update(ImportJob)
                .where(ImportJob.id.in_(keys), ImportJob.status == "ready")
                .values(status="cancelled", error_summary=UPLOAD_EXPIRED_MESSAGE)
                .returning(ImportJob.id)
            )
            keys = list(cancelled)
        await session.execute(delete(ImportFilePart).where(ImportFilePart.job_id.in_(keys)))
    return len(keys)
