"""`pim worker`: the arq worker running every job function of jobs/ on Redis."""

import asyncio
import functools
from typing import Any, cast

from arq.connections import RedisSettings
from arq.cron import cron
from arq.typing import WorkerCoroutine
from arq.worker import Retry, Worker, func

from jobs import REGISTRY, TIMEOUTS
from jobs.ahead import start_fork_server
from jobs.automations import schedule_due_automations
from jobs.webhooks import CRON_SECONDS, deliver_webhooks
from pim import collector
from pim.jobs import DEFAULT_QUEUE, MAX_TRIES, RETRY_DELAY_SECONDS, JobFunction
from pim.runtime import Runtime
from pim.settings import Settings

HEALTH_CHECK_SECONDS = 10


def retrying(function: JobFunction) -> JobFunction:
    """Unexpected failures become arq retries with a growing delay (arq itself retries
    only on Retry or a timeout): jobs are idempotent, so running again is safe."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await function(ctx, *args, **kwargs)
        except Retry:
            raise
        except Exception as exc:
            if ctx["job_try"] >= MAX_TRIES:
                raise
            raise Retry(defer=RETRY_DELAY_SECONDS * ctx["job_try"]) from exc

    return run


def worker_for(settings: Settings, *, burst: bool = False, queue: str = DEFAULT_QUEUE) -> Worker:
    if not settings.redis_url:
        raise SystemExit(
            "pim worker needs PIM_REDIS_URL (the embedded default runs jobs in process)."
        )

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["runtime"] = Runtime.from_settings(settings)
        collector.settle()
        if not burst and queue == DEFAULT_QUEUE:
            await asyncio.to_thread(start_fork_server)  # imports use it

    async def shutdown(ctx: dict[str, Any]) -> None:
        runtime: Runtime | None = ctx.get("runtime")
        if runtime is not None:
            await runtime.close()

    return Worker(
        # The webhook sender runs after every commit that records events: its results
        # are worth nothing once it ends, so Redis keeps none.
        functions=[
            func(
                cast(WorkerCoroutine, retrying(f)),
                name=name,
                timeout=TIMEOUTS.get(name),
                keep_result=0 if name == "deliver_webhooks" else None,
            )
            for name, f in REGISTRY.items()
        ],
        queue_name=queue,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=0.2 if not burst else 0,
        handle_signals=not burst,
        allow_abort_jobs=True,
        max_jobs=8,
        # The key `pim worker --check` looks for: renewed this often, gone soon after a
        # stuck or dead worker stops renewing it (arq's default is an hour).
        health_check_interval=HEALTH_CHECK_SECONDS,
        max_tries=MAX_TRIES,
        # The webhook safety net (due retries, events no commit-time run picked up) and
        # the user cron schedules, checked every minute (see jobs/automations.py).
        # Burst workers (tests) run only what was enqueued.
        cron_jobs=[]
        if burst
        else [
            cron(deliver_webhooks, second=CRON_SECONDS, unique=True),
            cron(schedule_due_automations, name="cron:schedule_due_automations"),
        ],
    )


def run_worker(settings: Settings, queue: str = DEFAULT_QUEUE) -> None:
    # arq's run() handles SIGINT/SIGTERM: running jobs finish before the worker stops.
    # One worker serves one queue: run one `pim worker --queue connectors` for syncs.
    worker_for(settings, queue=queue).run()
