"""Scheduled imports: the once-a-minute scheduler tick and the run of one automation."""

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pim import logs
from pim.outbound import OutboundPolicy
from pim.remote_files import Fetched, FetchFailed, FetchLimits, fetch
from pim.runtime import Runtime
from pim.timeutil import parse_iso8601, utcnow
from resolvers import automations
from resolvers.errors import DomainError
from resolvers.import_storage import InMemory
from resolvers.imports import create_job

log = logging.getLogger("pim.automations")


async def schedule_due_automations(ctx: dict[str, Any]) -> int:
    """Queue every due run. Safe to run on several workers at once: the runs' job ids are
    deterministic (one per automation and fire time), and each run claims its fire time."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.db.transaction() as session:
        return await automations.enqueue_due_runs(session, now=utcnow())


async def run_automation(ctx: dict[str, Any], automation_id: str, fire_at: str | None) -> str:
    """Download the automation's file and start an import job with it.

    `fire_at` is the scheduled time this run is for, or None for "run now".
    """
    runtime: Runtime = ctx["runtime"]
    async with runtime.db.transaction() as session:
        plan = await automations.start_run(
            session,
            automation_id=uuid.UUID(automation_id),
            fire_at=parse_iso8601(fire_at) if fire_at else None,
            settings=runtime.settings,
            retry=ctx.get("job_try", 1) > 1,
        )
    if plan is None:
        return "skipped"  # another runner has it, or it was deactivated or deleted
    logs.bind(account_id=str(plan.caller.account_id))
    try:
        fetched = await _download(plan, runtime)
        async with runtime.db.transaction() as session:
            job_id = await _start_import(session, plan, fetched.data)
            await automations.finish_run(
                session, plan, import_job_id=job_id, first_host_key=fetched.first_host_key
            )
        return "started"
    except (FetchFailed, DomainError) as exc:
        error = str(exc)
    except Exception:
        # A bug, not the user's doing: say so on the automation, keep the traceback.
        await _record_failure(runtime, plan, "erreur interne au démarrage de l'import")
        raise
    await _record_failure(runtime, plan, error)
    return "failed"


async def _download(plan: automations.RunPlan, runtime: Runtime) -> Fetched:
    if plan.source is None:
        raise FetchFailed(plan.error or "source illisible")
    settings = runtime.settings
    limits = FetchLimits(settings.automation_max_file_bytes, settings.automation_fetch_timeout)
    return await fetch(plan.source, OutboundPolicy.from_settings(settings), limits)


async def _record_failure(runtime: Runtime, plan: automations.RunPlan, error: str) -> None:
    async with runtime.db.transaction() as session:
        await automations.finish_run(session, plan, error=error)
    log.warning("automation %s failed: %s", plan.automation_id, error)


async def _start_import(
    session: AsyncSession, plan: automations.RunPlan, content: bytes
) -> uuid.UUID:
    assert plan.source is not None  # _download checked it
    job = await create_job(
        session,
        plan.caller,
        file_name=plan.source.file_name(),
        file=InMemory(content),
        supplier_code=plan.supplier_code,
        mapping=plan.mapping or None,
        automation_id=plan.automation_id,
    )
    job_id: uuid.UUID = job.id
    return job_id


async def _embedded_scheduler(runtime: Runtime) -> None:
    while True:
        now = utcnow()
        # Wake at the top of each minute, when cron schedules fire.
        await asyncio.sleep(60 - now.second - now.microsecond / 1_000_000)
        try:
            await schedule_due_automations({"runtime": runtime})
        except Exception:
            log.exception("automation scheduler tick failed")


@contextlib.asynccontextmanager
async def embedded_scheduler(runtime: Runtime) -> Any:
    """On the embedded default, the scheduler is a task of the API process (on the real
    stack it is the workers' arq cron, and API replicas schedule nothing)."""
    from pim.jobs import InProcessQueue, in_background

    if not isinstance(runtime.queue, InProcessQueue):
        yield
        return
    async with in_background(_embedded_scheduler(runtime), "automation-scheduler"):
        yield
