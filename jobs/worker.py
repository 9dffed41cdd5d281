"""`pim worker`: the arq worker running every job function of jobs/ on Redis."""

from typing import Any, cast

from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Worker, func

from jobs import REGISTRY, TIMEOUTS
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
        functions=[
            func(cast(WorkerCoroutine, f), name=name, timeout=TIMEOUTS.get(name))
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
    )


def run_worker(settings: Settings, queue: str = DEFAULT_QUEUE) -> None:
    # arq's run() handles SIGINT/SIGTERM: running jobs finish before the worker stops.
    # One worker serves one queue: run one `pim worker --queue connectors` for syncs.
    worker_for(settings, queue=queue).run()
