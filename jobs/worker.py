"""`pim worker`: the arq worker running every job function of jobs/ on Redis."""

from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import Worker

from jobs import REGISTRY
from jobs.automations import schedule_due_automations
from pim.jobs import DEFAULT_QUEUE
from pim.runtime import Runtime
from pim.settings import Settings


def worker_for(settings: Settings, *, burst: bool = False, queue: str = DEFAULT_QUEUE) -> Worker:
    if not settings.redis_url:
        raise SystemExit(
            "pim worker needs PIM_REDIS_URL (the embedded default runs jobs in process)."
        )

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["runtime"] = Runtime.from_settings(settings)

    async def shutdown(ctx: dict[str, Any]) -> None:
        runtime: Runtime | None = ctx.get("runtime")
        if runtime is not None:
            await runtime.close()

    return Worker(
        functions=list(REGISTRY.values()),
        # User cron schedules are checked every minute; see jobs/automations.py.
        cron_jobs=[cron(schedule_due_automations, name="cron:schedule_due_automations")],
        queue_name=queue,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=0.2 if not burst else 0,
        handle_signals=not burst,
        allow_abort_jobs=True,
        max_jobs=8,
    )


def run_worker(settings: Settings) -> None:
    # arq's run() handles SIGINT/SIGTERM: running jobs finish before the worker stops.
    worker_for(settings).run()
