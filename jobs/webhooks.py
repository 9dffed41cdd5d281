"""The webhook sender: dispatch outbox events, send the due deliveries, record every attempt.

Runs after each commit that records events (resolvers.webhook_delivery.enqueue),
and on a timer as a safety net: an arq cron on the real stack, a background task
of the app on the embedded default. Each round is three short transactions, and
no transaction stays open across an HTTP call.
"""

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from pim import outbound
from pim.crypto import Cipher, cipher_for
from pim.jobs import in_background
from pim.runtime import Runtime
from pim.timeutil import utcnow
from resolvers import webhook_delivery as delivery
from resolvers.webhook_delivery import AttemptResult, Outgoing

log = logging.getLogger("pim.webhooks")

# Seconds of each minute at which the safety net runs (arq cron wants sets).
CRON_SECONDS = {0, 30}
# A run starts no new round after this long (well within arq's job timeout); a larger
# backlog goes on at the next run.
RUN_BUDGET_SECONDS = 120.0
# Requests in flight to one endpoint at once. They carry different products: the
# deliveries of one product are never claimed together.
PER_ENDPOINT_CONCURRENCY = 8
ERROR_BODY_CHARS = 200


@dataclass(frozen=True, slots=True)
class RunSummary:
    dispatched: int
    attempted: int
    succeeded: int


async def deliver_webhooks(ctx: dict[str, Any]) -> dict[str, int]:
    summary = await run(ctx["runtime"])
    return {
        "dispatched": summary.dispatched,
        "attempted": summary.attempted,
        "succeeded": summary.succeeded,
    }


async def run(runtime: Runtime, *, now: datetime | None = None) -> RunSummary:
    """Dispatch and send until nothing is left to do now.

    `now` fixes the clock (tests drive retries through time without sleeping);
    unset, each round reads the real time.
    """
    policy = outbound.OutboundPolicy.from_settings(runtime.settings)
    cipher = cipher_for(runtime.settings)
    lease = timedelta(seconds=runtime.settings.job_lease_seconds)
    dispatched = attempted = succeeded = 0
    async with outbound.client(timeout=runtime.settings.webhook_timeout_seconds) as http:
        deadline = time.monotonic() + RUN_BUDGET_SECONDS
        while time.monotonic() < deadline:
            at = now or utcnow()
            async with runtime.db.transaction() as session:
                created = await delivery.dispatch(session, now=at)
            async with runtime.db.transaction() as session:
                claimed = await delivery.claim_due(session, now=at, lease=lease)
            if not created and not claimed:
                break
            # A round may take longer than the lease (slow receivers): the claims are
            # renewed while this sender lives, and lapse soon after it dies.
            renewing = _keep_claimed(runtime, claimed, now, lease)
            async with in_background(renewing, "webhook-claims"):
                results = await _send_all(http, claimed, cipher, policy, at)
            async with runtime.db.transaction() as session:
                await delivery.record_results(session, results, now=at)
            dispatched += created
            attempted += len(results)
            succeeded += sum(r.succeeded for r in results)
    return RunSummary(dispatched, attempted, succeeded)


async def _keep_claimed(
    runtime: Runtime, claimed: list[Outgoing], now: datetime | None, lease: timedelta
) -> None:
    ids = [item.delivery_id for item in claimed]
    while True:
        await asyncio.sleep(runtime.settings.job_lease_renew_seconds)
        async with runtime.db.transaction() as session:
            await delivery.extend_claims(session, ids, until=(now or utcnow()) + lease)


async def _send_all(
    http: httpx.AsyncClient,
    claimed: list[Outgoing],
    cipher: Cipher,
    policy: outbound.OutboundPolicy,
    at: datetime,
) -> list[AttemptResult]:
    """Every claimed delivery at once, at most PER_ENDPOINT_CONCURRENCY per endpoint."""
    limits: dict[uuid.UUID, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(PER_ENDPOINT_CONCURRENCY)
    )

    async def bounded(item: Outgoing) -> AttemptResult:
        async with limits[item.endpoint_id]:
            return await send(http, item, cipher, policy, at)

    return list(await asyncio.gather(*(bounded(item) for item in claimed)))


def request_for(item: Outgoing, secrets: list[str], at: datetime) -> httpx.Request:
    timestamp = int(at.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": delivery.USER_AGENT,
        delivery.EVENT_ID_HEADER: str(item.event_id),
        delivery.EVENT_TYPE_HEADER: item.event_type,
        delivery.DELIVERY_ID_HEADER: str(item.delivery_id),
        delivery.TIMESTAMP_HEADER: str(timestamp),
        delivery.SIGNATURE_HEADER: delivery.signature_header(secrets, timestamp, item.body),
    }
    return httpx.Request("POST", item.url, headers=headers, content=item.body)


async def send(
    http: httpx.AsyncClient,
    item: Outgoing,
    cipher: Cipher,
    policy: outbound.OutboundPolicy,
    at: datetime,
) -> AttemptResult:
    """One attempt; every outcome (refused, unreachable, timeout, any status) is a result."""
    secrets = [cipher.decrypt(token) for token in item.secrets_encrypted]
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        response = await outbound.send(http, request_for(item, secrets, at), policy)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status} : {response.text[:ERROR_BODY_CHARS]}".rstrip(" :")
    except outbound.OutboundBlocked as exc:
        error = f"destination refusée par le garde sortant : {exc}"
    except httpx.TimeoutException:
        error = "délai de réponse dépassé"
    except httpx.HTTPError as exc:
        error = f"erreur réseau : {type(exc).__name__} {exc}".strip()
    latency_ms = int((time.perf_counter() - started) * 1000)
    return AttemptResult(outgoing=item, status_code=status, latency_ms=latency_ms, error=error)


async def every(runtime: Runtime, interval: float) -> None:
    """The embedded default's safety net: run the sender on a timer until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run(runtime)
        except Exception:
            log.exception("webhook delivery run failed")
