"""Each job run's log fields, metrics and span, wrapped once around every job function.

The request that enqueues a job hands it a small carrier (its request id and trace
context) as the keyword argument CARRIER: the job's log lines then carry the request id
the client saw, and its spans continue the request's trace. A job run in process
inherits the request's context instead, as asyncio tasks do.
"""

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pim import logs, metrics, tracing

JobFunction = Callable[..., Awaitable[Any]]  # as pim.jobs names it, which imports this module

CARRIER = "pim_carrier"
log = logging.getLogger("pim.job")

# Jobs running in this process and when they started: the in-process queue's depth.
running: dict[str, tuple[str, float]] = {}


def carrier() -> dict[str, Any]:
    """The keyword arguments that carry this request's context into a job it enqueues."""
    context: dict[str, str] = {}
    request_id = logs.current_request_id()
    if request_id is not None:
        context["request_id"] = request_id
    tracing.inject(context)
    return {CARRIER: context} if context else {}


def observed(name: str, function: JobFunction, subject: str | None) -> JobFunction:
    """`function` logging within its job's scope (job id, function, subject id as field
    `subject`, the enqueuing request's id), timed and counted by outcome."""

    @functools.wraps(function)
    async def run(
        ctx: dict[str, Any], *args: Any, pim_carrier: dict[str, str] | None = None
    ) -> Any:
        job_id = str(ctx.get("job_id"))
        request_id = (pim_carrier or {}).get("request_id") or logs.current_request_id()
        fields = {
            "job_id": job_id,
            "job_function": name,
            "job_try": ctx.get("job_try"),
            "request_id": request_id,
        }
        if subject is not None and args:
            fields[subject] = str(args[0])
        started = time.perf_counter()
        outcome = "error"
        running[job_id] = (name, time.time())
        with logs.scope(**fields), tracing.job_span(name, pim_carrier, job_id=job_id):
            try:
                result = await function(ctx, *args)
                outcome = "ok"
                return result
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            except Exception:
                # Here, within the job's scope, so the trace carries its ids.
                log.exception("job %s failed", name, extra={"error_id": request_id or job_id})
                raise
            finally:
                running.pop(job_id, None)
                seconds = time.perf_counter() - started
                metrics.observe_job(name, outcome, seconds)
                log.log(
                    logging.INFO if outcome == "ok" else logging.WARNING,
                    "job %s %s", name, outcome,
                    extra={"outcome": outcome, "duration_ms": round(seconds * 1000, 2)},
                )  # fmt: skip

    return run


def observe_all(
    registry: Mapping[str, JobFunction], subjects: Mapping[str, str]
) -> dict[str, JobFunction]:
    """Every job function of `registry`, observed; `subjects` names the log field of each
    function's first argument (e.g. run_import → import_id)."""
    return {name: observed(name, f, subjects.get(name)) for name, f in registry.items()}
