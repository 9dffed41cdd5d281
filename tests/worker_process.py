"""`pim worker` as a process of its own, pointed at the test database and Redis, with
short leases: a worker that can be killed (SIGKILL) or asked to stop (SIGTERM)."""

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from pim.settings import Settings

# Short leases, so that a dead worker's job is taken over in a few seconds.
LEASE_SECONDS = 2.0
RENEW_SECONDS = 0.5


class WorkerProcess:
    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def exited(self, within: float) -> int:
        """The exit code, which must come within `within` seconds."""
        async with asyncio.timeout(within):
            return await self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def worker_process(
    settings: Settings, log_dir: Path, *, queue: str = "default", **env: str
) -> AsyncIterator[WorkerProcess]:
    assert settings.database_url and settings.redis_url, "the real stack only"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIM_")}
    environment |= {
        "PIM_DATABASE_URL": settings.database_url,
        "PIM_REDIS_URL": settings.redis_url,
        "PIM_DATA_DIR": str(settings.data_dir),  # its secret key, for connector credentials
        "PIM_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "PIM_JOB_LEASE_RENEW_SECONDS": str(RENEW_SECONDS),
        **env,
    }
    log = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "worker", "--queue", queue,
            env=environment, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    worker = WorkerProcess(process, log)
    try:
        yield worker
    finally:
        if process.returncode is None:
            worker.kill()
            await process.wait()
