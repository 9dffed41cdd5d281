"""What orchestrators and monitoring read: liveness, readiness and Prometheus metrics.

No key (probes carry none), no rate limit, and nothing read from the request body. The
metrics can be closed with a bearer token (PIM_METRICS_TOKEN).
"""

import hmac
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pim import health, metrics, queue_stats
from pim.jobs import DEFAULT_QUEUE
from pim.responses import OrjsonResponse
from pim.runtime import Runtime
from resolvers.job_health import stuck_counts
from resolvers.sync import CONNECTORS_QUEUE
from resolvers.webhook_delivery import undelivered_count
from rest_compat.common import presented_key, runtime

router = APIRouter(include_in_schema=False)

ARQ_QUEUES = {"default": DEFAULT_QUEUE, "connectors": CONNECTORS_QUEUE}


@router.get("/health/live")
async def live() -> OrjsonResponse:
    return OrjsonResponse({"status": "ok"})


@router.get("/health/ready")
async def ready(request: Request) -> OrjsonResponse:
    rt = runtime(request)
    checks = await health.readiness(rt.settings, rt.db)
    failing = health.failing(checks)
    body = {"status": "fail" if failing else "ok", "checks": checks, "failing": failing}
    return OrjsonResponse(body, status_code=503 if failing else 200)


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    rt = runtime(request)
    token = rt.settings.metrics_token
    presented = presented_key(request.headers) or ""
    if token and not hmac.compare_digest(presented.encode(), token.encode()):
        return OrjsonResponse(
            {"detail": "Jeton requis pour les métriques.", "code": "unauthenticated"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(metrics.exposition(await _live_state(rt)), media_type=metrics.CONTENT_TYPE)


async def _live_state(rt: Runtime) -> metrics.LiveState:
    """Queue depths, the webhook backlog and stuck jobs; a source that does not answer is left out
    (readiness reports it) rather than failing the whole scrape."""
    try:
        if rt.settings.redis_url:
            queues = await queue_stats.arq_queues(rt.settings.redis_url, ARQ_QUEUES)
        else:
            queues = queue_stats.in_process_queue()
    except Exception:
        queues = []
    try:
        async with rt.db.read() as session:
            backlog: int | None = await undelivered_count(session)
            stuck: dict[str, int] | None = await stuck_counts(
                session, older_than=timedelta(seconds=rt.settings.job_stuck_after_seconds)
            )
    except Exception:
        backlog = stuck = None
    return metrics.LiveState(queues=queues, webhook_backlog=backlog, stuck_jobs=stuck)
