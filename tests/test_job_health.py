"""The watchdog: unfinished jobs that stopped progressing are reported (a function for
metrics, a stable log line for people), and moving or parked ones are not."""

import logging
from datetime import timedelta

import pytest

from jobs import housekeeping
from models import Connector, ImportJob, SyncJob
from pim.runtime import Runtime
from pim.timeutil import utcnow
from tests.conftest import Key


async def test_jobs_not_progressing_for_too_long_are_reported(
    runtime: Runtime, key: Key, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    long_ago, lately = now - timedelta(minutes=20), now - timedelta(minutes=5)
    async with runtime.db.transaction() as session:
        connector = Connector(account_id=key.account_id, name="shop", platform="woocommerce")
        session.add(connector)
        await session.flush()
        stuck_import = ImportJob(
            account_id=key.account_id, file_name="a.csv", file_type="csv",
            status="processing", progressed_at=long_ago,
        )  # fmt: skip
        never_started = ImportJob(
            account_id=key.account_id, file_name="b.csv", file_type="csv",
            status="pending", created_at=long_ago - timedelta(minutes=1),
        )  # fmt: skip
        moving = ImportJob(
            account_id=key.account_id, file_name="c.csv", file_type="csv",
            status="processing", progressed_at=lately,
        )  # fmt: skip
        parked = ImportJob(
            account_id=key.account_id, file_name="d.csv", file_type="csv",
            status="paused", progressed_at=long_ago,
        )  # fmt: skip
        stuck_sync = SyncJob(
            account_id=key.account_id, connector_id=connector.id, kind="push-stock",
            status="running", progressed_at=long_ago,
        )  # fmt: skip
        session.add_all([stuck_import, never_started, moving, parked, stuck_sync])
    monkeypatch.setattr(runtime.settings, "job_stuck_after_seconds", 600)

    stuck = [j for j in await housekeeping.stuck_jobs(runtime) if j.account_id == key.account_id]
    assert [(j.kind, j.job_id, j.status) for j in stuck] == [
        ("import", never_started.id, "pending"),
        ("import", stuck_import.id, "processing"),
        ("sync", stuck_sync.id, "running"),
    ]
    with caplog.at_level(logging.WARNING, logger="pim.jobs.health"):
        assert await housekeeping.watch_stuck_jobs({"runtime": runtime}) >= 3
    lines = [r.getMessage() for r in caplog.records if str(stuck_sync.id) in r.getMessage()]
    assert lines == [
        f"job not progressing: sync job {stuck_sync.id} (account {key.account_id}) running "
        f"since {long_ago.isoformat()}"
    ]
