"""Retention: each kind of leftover goes once past its age, and only then; the dry
run announces exactly what the run removes. Both backends."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from jobs import housekeeping
from models import (
    AuditEvent,
    Connector,
    Event,
    ImportFilePart,
    ImportJob,
    ImportLog,
    SyncJob,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from pim.runtime import Runtime
from pim.timeutil import utcnow
from resolvers.retention import UPLOAD_EXPIRED_MESSAGE
from tests.cli_helper import pim
from tests.conftest import Key

DAY = timedelta(days=1)
# The audit entries this test makes (its key's own creation is in the trail too).
AUDIT_TARGET = "retention-test-"


def _ago(days: float) -> datetime:
    return utcnow() - days * DAY


class Leftovers:
    """An account's deliveries, imports and syncs, each just younger or just older than
    the default retention of its kind."""

    def __init__(self, runtime: Runtime, key: Key) -> None:
        self.runtime = runtime
        self.account = key.account_id
        self.kept: dict[str, set[Any]] = {}
        self.gone: dict[str, set[Any]] = {}

    def _expect(self, kind: str, key: Any, *, gone: bool) -> None:
        (self.gone if gone else self.kept).setdefault(kind, set()).add(key)

    async def build(self) -> None:
        async with self.runtime.db.transaction() as session:
            # Inactive: the senders of other tests never try its deliveries.
            endpoint = WebhookEndpoint(
                account_id=self.account, url="https://example.com/hook", secret_encrypted="x",
                is_active=False,
            )  # fmt: skip
            event = Event(account_id=self.account, type="product.updated", payload={})
            connector = Connector(account_id=self.account, name="shop", platform="woocommerce")
            session.add_all([endpoint, event, connector])
            await session.flush()
            for status, days, gone in [
                ("succeeded", 31, True), ("dead", 31, True), ("succeeded", 29, False),
                ("failed", 31, False),  # still being retried: never removed
            ]:  # fmt: skip
                delivery = WebhookDelivery(
                    account_id=self.account, endpoint_id=endpoint.id, event_seq=event.seq,
                    event_id=event.id, event_type=event.type, status=status, created_at=_ago(days),
                )  # fmt: skip
                session.add(delivery)
                await session.flush()
                session.add(
                    WebhookAttempt(account_id=self.account, delivery_id=delivery.id, attempt=1)
                )
                self._expect("webhook_deliveries", delivery.id, gone=gone)
            for status, days, logs_gone, file_gone in [
                ("completed", 31, True, True), ("failed", 8, False, True),
                ("completed", 6, False, False), ("processing", 40, False, False),
                ("paused", 40, False, False),
            ]:  # fmt: skip
                job = await self._import(session, status, days)
                self._expect("import_logs", job.id, gone=logs_gone)
                self._expect("import_files", job.id, gone=file_gone)
            for days, gone in [(8, True), (6, False)]:
                job = await self._import(session, "ready", days)
                self._expect("uploads", job.id, gone=gone)
                self._expect("import_logs", job.id, gone=False)
            for status, days, gone in [
                ("completed", 31, True), ("failed", 31, True), ("completed", 29, False),
                ("running", 40, False),
            ]:  # fmt: skip
                sync = SyncJob(
                    account_id=self.account, connector_id=connector.id, kind="push-stock",
                    status=status, created_at=_ago(days),
                    completed_at=None if status == "running" else _ago(days),
                )  # fmt: skip
                session.add(sync)
                await session.flush()
                self._expect("sync_jobs", sync.id, gone=gone)
            for days, gone in [(366, True), (364, False)]:
                entry = AuditEvent(
                    account_id=self.account, action="webhook.deleted", target_type="webhook",
                    target_id=f"{AUDIT_TARGET}{days}", created_at=_ago(days),
                )  # fmt: skip
                session.add(entry)
                await session.flush()
                self._expect("audit_events", entry.id, gone=gone)

    async def _import(self, session: Any, status: str, days: float) -> ImportJob:
        ended = status in ("completed", "failed", "ready")
        job = ImportJob(
            account_id=self.account, file_name="a.csv", file_type="csv", status=status,
            created_at=_ago(days), completed_at=_ago(days) if ended else None,
        )  # fmt: skip
        session.add(job)
        await session.flush()
        session.add(ImportFilePart(job_id=job.id, seq=0, data=b"EAN\n1\n"))
        session.add(ImportLog(job_id=job.id, row_number=1, level="error", message="x"))
        return job

    async def remaining(self) -> dict[str, set[Any]]:
        async with self.runtime.db.read() as session:
            mine = ImportJob.account_id == self.account
            left = {
                "webhook_deliveries": set(await session.scalars(
                    select(WebhookDelivery.id).where(WebhookDelivery.account_id == self.account)
                )),
                "import_logs": set(await session.scalars(
                    select(ImportLog.job_id).join(ImportJob).where(mine)
                )),
                "import_files": set(await session.scalars(
                    select(ImportFilePart.job_id).join(ImportJob)
                    .where(mine, ImportJob.status != "ready")
                )),
                "uploads": set(await session.scalars(
                    select(ImportFilePart.job_id).join(ImportJob)
                    .where(mine, ImportJob.status == "ready")
                )),
                "sync_jobs": set(await session.scalars(
                    select(SyncJob.id).where(SyncJob.account_id == self.account)
                )),
                "audit_events": set(await session.scalars(
                    select(AuditEvent.id).where(
                        AuditEvent.account_id == self.account,
                        AuditEvent.target_id.startswith(AUDIT_TARGET),
                    )
                )),
            }  # fmt: skip
            attempts = await session.scalar(
                select(func.count()).select_from(WebhookAttempt)
                .where(WebhookAttempt.account_id == self.account)
            )  # fmt: skip
        assert attempts == len(left["webhook_deliveries"])  # attempts go with their delivery
        return left


async def test_retention_removes_exactly_what_is_past_its_age(
    runtime: Runtime, key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches: a run is many transactions.
    monkeypatch.setattr(runtime.settings, "retention_batch_size", 1)
    leftovers = Leftovers(runtime, key)
    await leftovers.build()
    before = await leftovers.remaining()
    assert before == {kind: leftovers.kept[kind] | leftovers.gone[kind] for kind in before}

    announced = await housekeeping.retention_due(runtime)
    removed = await housekeeping.apply_retention({"runtime": runtime})

    assert await leftovers.remaining() == leftovers.kept
    # Other tests leave nothing this old: what was announced is what went, ours.
    assert announced == removed == {kind: len(ids) for kind, ids in leftovers.gone.items()}
    async with runtime.db.read() as session:
        expired = await session.scalars(
            select(ImportJob.status).where(ImportJob.id.in_(leftovers.gone["uploads"]))
        )
        assert list(expired) == ["cancelled"]
        summary = await session.scalar(
            select(ImportJob.error_summary).where(ImportJob.id.in_(leftovers.gone["uploads"]))
        )
        assert summary == UPLOAD_EXPIRED_MESSAGE
    assert await housekeeping.apply_retention({"runtime": runtime}) == dict.fromkeys(removed, 0)


def test_pim_retention_shows_then_removes(tmp_path: Path) -> None:
    dry = pim(tmp_path, "retention", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        "webhook_deliveries: 0 à supprimer (webhook deliveries and their attempts, > 30 jours)"
        in dry.stdout
    )
    assert "uploads: 0 à supprimer" in dry.stdout
    real = pim(tmp_path, "retention")
    assert real.returncode == 0, real.stderr
    assert "sync_jobs: 0 supprimés (finished connector sync jobs, > 30 jours)" in real.stdout
