"""`pim worker`: the arq worker running every job function of jobs/ on Redis, with the
cron schedules, leases and retries around them."""

import asyncio
import contextlib
import functools
from signal import Signals
from typing import Any, cast

from arq.connections import RedisSettings
from arq.cron import cron
from arq.typing import WorkerCoroutine
from arq.worker import Retry, Worker, func

from jobs import REGISTRY, TIMEOUTS
from jobs.automations import schedule_due_automations
from jobs.housekeeping import (
    RETENTION_MINUTE,
    RETENTION_SECOND,
    WATCHDOG_SECOND,
    apply_retention,
    reap_forever,
    watch_stuck_jobs,
)
from jobs.read_ahead import start_fork_server
from jobs.webhooks import CRON_SECONDS, deliver_webhooks
from pim import gc_tuning
from pim.jobs import DEFAULT_QUEUE, MAX_TRIES, RETRY_DELAY_SECONDS, JobFunction
from pim.leases import Leases
from pim.runtime import Runtime
from pim.settings import Settings
from service.runtime import build_runtime

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


def leased(function: JobFunction) -> JobFunction:
    """The job holds a lease while it runs (see pim.leases): if this worker dies, the
    reaper of another one hands the job over within a lease."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        leases: Leases = ctx["leases"]
        async with leases.held(ctx["job_id"]):
            return await function(ctx, *args, **kwargs)

    return run


class _DrainingWorker(Worker):
    """On SIGTERM (or SIGINT) the worker takes no new job and tells the running ones to
    hand over at their next checkpoint (Runtime.draining); arq then waits for them up to
    `worker_drain_seconds`, and cancels and re-queues what still runs."""

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        runtime: Runtime | None = self.ctx.get("runtime")
        if runtime is not None:
            runtime.draining = True
        super().handle_sig_wait_for_completion(signum)


def worker_for(settings: Settings, *, burst: bool = False, queue: str = DEFAULT_QUEUE) -> Worker:
    if not settings.redis_url:
        raise SystemExit(
            "pim worker needs PIM_REDIS_URL (the embedded default runs jobs in process)."
        )

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["runtime"] = runtime = build_runtime(settings)
        ctx["leases"] = leases = Leases(
            ctx["redis"],
            seconds=settings.job_lease_seconds,
            renew_every=settings.job_lease_renew_seconds,
        )
        gc_tuning.settle()
        # Burst workers reap too: a job whose worker died is still counted in the queue,
        # and a burst worker waits for every queued job before it ends.
        ctx["reaper"] = asyncio.create_task(reap_forever(runtime, leases), name="reaper")
        if not burst and queue == DEFAULT_QUEUE:
            await asyncio.to_thread(start_fork_server)  # imports use it

    async def shutdown(ctx: dict[str, Any]) -> None:
        reaper: asyncio.Task[None] | None = ctx.get("reaper")
        if reaper is not None:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
        runtime: Runtime | None = ctx.get("runtime")
        if runtime is not None:
            await runtime.close()

    return _DrainingWorker(
        # The webhook sender runs after every commit that records events: its results
        # are worth nothing once it ends, so Redis keeps none.
        functions=[
            func(
                cast(WorkerCoroutine, retrying(leased(f))),
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
        job_completion_wait=settings.worker_drain_seconds,
        allow_abort_jobs=True,
        max_jobs=8,
        # The key `pim worker --check` looks for: renewed this often, gone soon after a
        # stuck or dead worker stops renewing it (arq's default is an hour).
        health_check_interval=HEALTH_CHECK_SECONDS,
        # arq counts every start, the takeover of a dead worker's job included, and gives
        # up silently past this: failures are bounded by `retrying` (MAX_TRIES), and a
        # job may still be taken over after a few kills.
        max_tries=2 * MAX_TRIES,
        # The webhook safety net (due retries, events no commit-time run picked up) and
        # the user cron schedules, checked every minute (see jobs/automations.py).
        # Burst workers (tests) run only what was enqueued.
        cron_jobs=[]
        if burst
        else [
            cron(deliver_webhooks, second=CRON_SECONDS, unique=True),
            cron(schedule_due_automations, name="cron:schedule_due_automations"),
            cron(watch_stuck_jobs, name="cron:watch_stuck_jobs", second=WATCHDOG_SECOND),
            cron(
                apply_retention,
                name="cron:apply_retention",
                minute=RETENTION_MINUTE,
                second=RETENTION_SECOND,
            ),
        ],
    )


def run_worker(settings: Settings, queue: str = DEFAULT_QUEUE) -> None:
    # SIGINT/SIGTERM drain the worker (see _DrainingWorker) within worker_drain_seconds.
    # One worker serves one queue: run one `pim worker --queue connectors` for syncs.
    worker_for(settings, queue=queue).run()
