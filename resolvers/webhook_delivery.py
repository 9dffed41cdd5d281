"""Delivering outbox events to webhook endpoints: dispatch, ordering, signing, retries.

The system side of webhooks (no caller): `jobs/webhooks.py` drives it in short
transactions around the HTTP calls.

1. `dispatch` moves each active endpoint's cursor through the outbox in sequence
   order, never past the dispatch state's safe sequence (see WebhookDispatchState),
   and creates one delivery per matching event, a chunk per statement. A change set
   (resolvers.change_sets) is expanded into one delivery per product, each carrying
   the product's own event id, type and subject: receivers cannot tell it from a
   plain product event.
2. `claim_due` leases the deliveries whose time has come, skipping any whose
   endpoint has an earlier delivery for the same product still pending or
   retrying: events of one product reach an endpoint in order.
3. `record_results` logs every attempt and schedules the retry (BACKOFF), marks
   the delivery dead after the last one, and disables an endpoint that has been
   failing without a single success for DISABLE_AFTER.

Signature scheme (what receivers verify):
    Pixee-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
During a secret rotation the header carries one `v1=` per secret still valid
(newest first); a receiver accepts the request if any of them matches its secret.
"""

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import Event, WebhookAttempt, WebhookDelivery, WebhookDispatchState, WebhookEndpoint
from pim import json_encoding, metrics
from pim.clock import stable_horizon
from pim.ids import uuid7
from pim.jobs import defer
from pim.timeutil import as_utc, isoformat_z, utcnow
from resolvers import change_sets
from resolvers.change_sets import CHANGE_SET

EVENT_TYPES = (
    "product.created",
    "product.updated",
    "product.deleted",
    "stock.updated",
    "price.updated",
)
ALL_EVENTS = "*"
# The types a change set's products are told as.
PRODUCT_CHANGES = ("product.created", "product.updated")
SIGNATURE_HEADER = "Pixee-Signature"
EVENT_ID_HEADER = "Pixee-Event-Id"
EVENT_TYPE_HEADER = "Pixee-Event-Type"
TIMESTAMP_HEADER = "Pixee-Timestamp"
DELIVERY_ID_HEADER = "Pixee-Delivery-Id"
USER_AGENT = "Pixee-Webhooks/1.0"

# Wait after failed attempt n before attempt n + 1: ten retries over 31 h 42 min 30 s.
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
    timedelta(hours=8),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
# When a delivery dies and its endpoint has not had one success for this long, the
# endpoint is disabled (a dead delivery alone spans this long already).
DISABLE_AFTER = timedelta(hours=24)
DISPATCH_CHUNK = 1000
CLAIM_BATCH = 100
# An earlier delivery in one of these states holds back later ones of the same product.
OPEN_STATUSES = ("pending", "failed")
STATE_ID = 1
DISPATCH_JOB = "deliver_webhooks"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A claimed delivery, with everything needed to send it outside any transaction."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secrets_encrypted: tuple[str, ...]
    event_id: uuid.UUID
    event_type: str
    body: bytes
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outgoing: Outgoing
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def enqueue(session: AsyncSession, job_id: str | None = None) -> None:
    """Run the sender once this transaction commits.

    Runs serialise on the dispatch state row, and one that finds nothing to do is
    a handful of queries. A job id shared by several commits would drop the
    requests of commits landing while the run is already past them, so ids are
    never shared between transactions.
    """
    defer(session, DISPATCH_JOB, job_id=job_id)


async def enqueue_if_subscribed(session: AsyncSession, account_id: uuid.UUID) -> None:
    """After recording events: start the sender if the account has an active endpoint.

    The job id is the highest sequence number this transaction wrote: deterministic,
    and different for every transaction.
    """
    subscribed = await session.scalar(
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.is_active.is_(True))
        .limit(1)
    )
    if subscribed is not None:
        last = await session.scalar(
            select(func.max(Event.seq)).where(Event.account_id == account_id)
        )
        enqueue(session, f"webhooks:{last}")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def verify(header: str, body: bytes, secret: str) -> bool:
    """What a receiver does: recompute with its secret and compare with each v1."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamps = [v for k, v in parts if k == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    expected = sign(secret, int(timestamps[0]), body)
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


def event_body(event: Event, event_id: uuid.UUID) -> bytes:
    """The request body of the event `event_id`: `event` itself, or a product of the
    change set `event`."""
    if event.type != CHANGE_SET:
        told = (event.id, event.type, event.occurred_at, event.payload)
    else:
        item = change_sets.item(
            event.id, event.occurred_at, event.payload, change_sets.set_of(event_id)[1]
        )
        told = (item.id, item.type, item.occurred_at, item.data)
    id_, type_, occurred_at, data = told
    return json_encoding.dumps(
        {
            "id": str(id_),
            "type": type_,
            "account_id": str(event.account_id),
            "occurred_at": isoformat_z(occurred_at),
            "data": data,
        }
    )


def subscribed(event_type: str, event_types: list[str]) -> bool:
    return ALL_EVENTS in event_types or event_type in event_types


def matching(event_types: list[str]) -> Any:
    """The SQL condition on Event.type for an endpoint's subscription (change sets
    match a subscription to either of the types they tell)."""
    if ALL_EVENTS in event_types:
        return true()
    if any(t in event_types for t in PRODUCT_CHANGES):
        return Event.type.in_([*event_types, CHANGE_SET])
    return Event.type.in_(event_types)


def delivery_rows(
    endpoint_id: uuid.UUID,
    account_id: uuid.UUID,
    events: Sequence[Any],
    now: datetime,
    *,
    replay: bool = False,
) -> list[dict[str, Any]]:
    """Delivery rows for (seq, id, type, subject_id) event tuples, for one insert statement."""
    return [
        {
            "id": uuid7(),
            "account_id": account_id,
            "endpoint_id": endpoint_id,
            "event_seq": e.seq,
            "event_id": e.id,
            "event_type": e.type,
            "subject_id": e.subject_id,
            "status": "pending",
            "is_replay": replay,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for e in events
    ]


EventKeys = Select[int, uuid.UUID, str, uuid.UUID | None, datetime]


def event_keys() -> EventKeys:
    return select(Event.seq, Event.id, Event.type, Event.subject_id, Event.occurred_at)


@dataclass(frozen=True, slots=True)
class EventKey:
    """What a delivery copies from the event it delivers."""

    seq: int
    id: uuid.UUID
    type: str
    subject_id: uuid.UUID | None


class Expansion:
    """Event keys to deliver: a plain event's own, or those of a change set's products.

    Each set's payload is read once however many endpoints expand it.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.payloads: dict[int, dict[str, Any]] = {}

    async def keys(
        self,
        event: Any,
        event_types: list[str],
        window: tuple[datetime, datetime] | None = None,
    ) -> list[EventKey]:
        """For one row of `event_keys()`: the keys subscribed to, and, given a window
        [since, until), only the products changed within it."""
        if event.type != CHANGE_SET:
            return [EventKey(event.seq, event.id, event.type, event.subject_id)]
        payload = self.payloads.get(event.seq)
        if payload is None:
            payload = await self.session.scalar(select(Event.payload).where(Event.seq == event.seq))
            self.payloads[event.seq] = payload or {"products": []}
        items = change_sets.items(event.id, as_utc(event.occurred_at), self.payloads[event.seq])
        return [
            EventKey(event.seq, item.id, item.type, item.subject_id)
            for item in items
            if subscribed(item.type, event_types)
            and (window is None or window[0] <= item.occurred_at < window[1])
        ]


async def _db_now(session: AsyncSession) -> datetime:
    # The horizon is computed from the database's clock on PostgreSQL: compare like with like.
    if session.get_bind().dialect.name == "postgresql":
        return as_utc(await session.scalar(text("SELECT clock_timestamp()")))
    return utcnow()


async def write_first(session: AsyncSession) -> None:
    """On SQLite, take the database's write lock before this transaction reads anything.

    A SQLite transaction that reads, then writes after another connection committed,
    fails at once (SQLITE_BUSY_SNAPSHOT, which busy_timeout does not retry); holding
    the write lock from the start makes it wait its turn instead. PostgreSQL locks rows.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(WebhookDispatchState)
            .where(WebhookDispatchState.id == STATE_ID)
            .values(safe_seq=WebhookDispatchState.safe_seq)
        )


async def safe_seq(session: AsyncSession) -> int:
    """Advance and return the sequence below which the outbox is complete.

    Locks the state row: dispatchers run one at a time.
    """
    await write_first(session)
    state = await session.scalar(
        select(WebhookDispatchState)
        .where(WebhookDispatchState.id == STATE_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if state is None:
        state = WebhookDispatchState(id=STATE_ID, safe_seq=0, pending_seq=0)
        session.add(state)
    if state.pending_at is None or state.pending_seq <= state.safe_seq:
        # Read the highest visible seq before taking the time: every lower seq was
        # then held by a transaction that had already started.
        visible = await session.scalar(select(func.coalesce(func.max(Event.seq), 0)))
        state.pending_seq, state.pending_at = int(visible or 0), await _db_now(session)
    # Once no transaction open at pending_at remains, every seq up to pending_seq is final.
    if state.pending_at is not None and await stable_horizon(session) >= state.pending_at:
        state.safe_seq = max(state.safe_seq, state.pending_seq)
    await session.flush()
    return state.safe_seq


async def dispatch(session: AsyncSession, *, now: datetime) -> int:
    """Create deliveries for the events past each active endpoint's cursor; returns how many."""
    upper = await safe_seq(session)
    endpoints = (
        await session.execute(
            select(
                WebhookEndpoint.id,
                WebhookEndpoint.account_id,
                WebhookEndpoint.event_types,
                WebhookEndpoint.last_event_seq,
            )
            .where(
                WebhookEndpoint.is_active.is_(True),
                WebhookEndpoint.disabled_at.is_(None),
                WebhookEndpoint.last_event_seq < upper,
            )
            # Endpoint rows are locked in id order everywhere: concurrent senders never deadlock.
            .order_by(WebhookEndpoint.id)
        )
    ).all()
    created = 0
    expansion = Expansion(session)
    for endpoint_id, account_id, event_types, cursor in endpoints:
        events = (
            await session.execute(
                event_keys()
                .where(
                    Event.account_id == account_id,
                    Event.seq > cursor,
                    Event.seq <= upper,
                    matching(event_types),
                )
                .order_by(Event.seq)
                .limit(DISPATCH_CHUNK)
            )
        ).all()
        # A full chunk: stop the cursor at its last event, the next round goes on from there.
        reached = events[-1].seq if len(events) == DISPATCH_CHUNK else upper
        keys: list[EventKey] = []
        for event in events:
            keys += await expansion.keys(event, event_types)
            if len(keys) >= DISPATCH_CHUNK:  # a chunk of deliveries, whole sets
                reached = event.seq
                break
        if keys:
            await session.execute(
                insert(WebhookDelivery), delivery_rows(endpoint_id, account_id, keys, now)
            )
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(last_event_seq=reached)
        )
        created += len(keys)
    return created


async def claim_due(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int = CLAIM_BATCH
) -> list[Outgoing]:
    """Lease the deliveries due now whose product has no earlier open delivery.

    A claimed delivery is not claimed again before `now + lease`: the sender renews the
    lease while it sends (extend_claims), and a crashed sender's claim lapses.
    """
    await write_first(session)
    earlier = aliased(WebhookDelivery)
    held_back = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.subject_id == WebhookDelivery.subject_id,
        # The products of one change set share its seq; their event ids grow in set order.
        or_(
            earlier.event_seq < WebhookDelivery.event_seq,
            and_(
                earlier.event_seq == WebhookDelivery.event_seq,
                earlier.event_id < WebhookDelivery.event_id,
            ),
        ),
        earlier.status.in_(OPEN_STATUSES),
    )
    stmt = (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status.in_(OPEN_STATUSES),
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.is_active.is_(True),
            WebhookEndpoint.disabled_at.is_(None),
            ~held_back,
        )
        .order_by(WebhookDelivery.event_seq, WebhookDelivery.event_id, WebhookDelivery.created_at)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Concurrent senders each take different deliveries.
        stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_([d.id for d, _ in rows]))
        .values(next_attempt_at=now + lease)
    )
    # Each event read once: a change set's payload serves all its products' deliveries.
    told = {
        e.seq: e
        for e in await session.scalars(
            select(Event).where(Event.seq.in_({d.event_seq for d, _ in rows}))
        )
    }
    return [
        Outgoing(
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            url=endpoint.url,
            secrets_encrypted=signing_secrets(endpoint, now),
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            body=event_body(told[delivery.event_seq], delivery.event_id),
            attempt=delivery.attempts + 1,
        )
        for delivery, endpoint in rows
    ]


async def extend_claims(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID], *, until: datetime
) -> None:
    """Keep claimed deliveries leased to their sender (still sending) until `until`."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status.in_(OPEN_STATUSES))
        .values(next_attempt_at=until)
    )


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The encrypted secrets that sign right now: the current one, then a rotated-out one."""
    secrets = [endpoint.secret_encrypted]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > now:
        secrets.append(endpoint.previous_secret_encrypted)
    return tuple(secrets)


def _next_state(result: AttemptResult, now: datetime) -> dict[str, Any]:
    attempt = result.outgoing.attempt
    state: dict[str, Any] = {
        "id": result.outgoing.delivery_id,
        "attempts": attempt,
        "last_status_code": result.status_code,
        "last_error": result.error,
        "updated_at": now,
    }
    if result.succeeded:
        return {**state, "status": "succeeded", "delivered_at": now, "next_attempt_at": None}
    # Same keys in every row: one bulk UPDATE statement for the whole batch.
    if attempt >= MAX_ATTEMPTS:
        return {**state, "status": "dead", "delivered_at": None, "next_attempt_at": None}
    retry_at = now + BACKOFF[attempt - 1]
    return {**state, "status": "failed", "delivered_at": None, "next_attempt_at": retry_at}


async def record_results(
    session: AsyncSession, results: list[AttemptResult], *, now: datetime
) -> None:
    """Log the attempts, move each delivery on, and keep each endpoint's failure streak."""
    if not results:
        return
    await write_first(session)
    endpoints = {
        e.id: e
        for e in await session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_({r.outgoing.endpoint_id for r in results}))
            .order_by(WebhookEndpoint.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    attempts: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    for result in results:
        endpoint = endpoints.get(result.outgoing.endpoint_id)
        if endpoint is None:
            continue  # deleted while the request was in flight; its deliveries went with it
        attempts.append(
            {
                "id": uuid7(),
                "account_id": endpoint.account_id,
                "delivery_id": result.outgoing.delivery_id,
                "attempt": result.outgoing.attempt,
                "status_code": result.status_code,
                "latency_ms": result.latency_ms,
                "error": result.error,
                "attempted_at": now,
            }
        )
        state = _next_state(result, now)
        states.append(state)
        _track_endpoint(endpoint, result, died=state["status"] == "dead", now=now)
    if attempts:
        await session.execute(insert(WebhookAttempt), attempts)
        await session.execute(update(WebhookDelivery), states)
    metrics.webhook_deliveries(state["status"] for state in states)
    await session.flush()


def _track_endpoint(
    endpoint: WebhookEndpoint, result: AttemptResult, *, died: bool, now: datetime
) -> None:
    if result.succeeded:
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
        return
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or now
    if died and endpoint.disabled_at is None and now - endpoint.failing_since >= DISABLE_AFTER:
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"Désactivé automatiquement : {endpoint.consecutive_failures} échecs consécutifs "
            f"depuis le {isoformat_z(endpoint.failing_since)}, une livraison a épuisé ses "
            f"{MAX_ATTEMPTS} tentatives (dernière erreur : {result.error})."
        )
        endpoint.updated_at = now


def events_in_range(
    account_id: uuid.UUID, event_types: list[str], since: datetime, until: datetime
) -> EventKeys:
    """The events of [since, until), and the change sets that may hold products of it
    (Expansion.keys with the window keeps those)."""
    return (
        event_keys()
        .where(
            and_(
                Event.account_id == account_id,
                or_(
                    Event.occurred_at >= since,
                    and_(
                        Event.type == CHANGE_SET,
                        Event.occurred_at >= since - change_sets.MAX_SPAN,
                    ),
                ),
                Event.occurred_at < until,
                matching(event_types),
            )
        )
        .order_by(Event.seq)
    )


def event_by_id(account_id: uuid.UUID, event_id: uuid.UUID) -> EventKeys:
    """The event `event_id` of the account: a plain event, or the change set holding it."""
    of_set, _ = change_sets.set_of(event_id)
    return event_keys().where(
        Event.account_id == account_id,
        or_(Event.id == event_id, and_(Event.id == of_set, Event.type == CHANGE_SET)),
    )


async def undelivered_count(session: AsyncSession) -> int:
    """Deliveries of every account not delivered yet (the backlog an operator watches):
    read from the (status, next_attempt_at) index."""
    count = await session.scalar(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.status.in_(OPEN_STATUSES))
    )
    return int(count or 0)
