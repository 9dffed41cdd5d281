"""Webhook endpoints of an account: CRUD, secret rotation, delivery log, replay, re-enable.

Every operation needs `settings:manage`. A signing secret is returned once, by the
operation that creates it, and stored encrypted; nothing reads it back.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from pim import outbound
from pim.auth import Caller
from pim.crypto import cipher_for
from pim.settings import Settings
from pim.timeutil import utcnow
from resolvers import audit
from resolvers import webhook_delivery as delivery
from resolvers.bounds import check_text, utc_moment
from resolvers.errors import FieldError, NotFound, ValidationFailed
from resolvers.paging import Page, page
from resolvers.permissions import Operation, require
from resolvers.webhook_delivery import ALL_EVENTS

SECRET_PREFIX = "whsec_"
# A replayed range is one insert; past this many events, ask for a narrower range.
MAX_REPLAY = 10_000
ROTATION_GRACE_HOURS = 24.0
MAX_GRACE_HOURS = 168
DELIVERY_STATUSES = ("pending", "failed", "succeeded", "dead")


@dataclass(frozen=True, slots=True)
class EndpointInput:
    url: str
    event_types: list[str]
    description: str | None = None
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class EndpointChanges:
    """Only the fields given (not None) change."""

    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    is_active: bool | None = None


@dataclass(frozen=True, slots=True)
class WithSecret:
    endpoint: WebhookEndpoint
    secret: str


def endpoint_status(endpoint: WebhookEndpoint) -> str:
    """active, paused (by its owner) or disabled (after failing for too long)."""
    if endpoint.disabled_at is not None:
        return "disabled"
    return "active" if endpoint.is_active else "paused"


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def _checked_url(url: str, settings: Settings) -> str:
    """The URL, after the outbound guard accepted its scheme and resolved addresses."""
    url = url.strip()
    check_text("url", url, 2048)
    try:
        return await outbound.check_url(url, outbound.OutboundPolicy.from_settings(settings))
    except outbound.OutboundBlocked as exc:
        raise ValidationFailed.of([FieldError("url", str(exc), "invalid")]) from exc


def _event_types(values: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(v.strip() for v in values))
    unknown = [v for v in wanted if v != delivery.ALL_EVENTS and v not in delivery.EVENT_TYPES]
    if not wanted or unknown:
        allowed = ", ".join([delivery.ALL_EVENTS, *delivery.EVENT_TYPES])
        raise ValidationFailed.of(
            [FieldError("events", f"types d'événements attendus parmi : {allowed}", "invalid")]
        )
    return [delivery.ALL_EVENTS] if delivery.ALL_EVENTS in wanted else wanted


def _description(value: str | None) -> str | None:
    check_text("description", value, 255)
    return value


def _scoped_endpoints(caller: Caller) -> Select[WebhookEndpoint]:
    return (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.account_id == caller.account_id)
        .execution_options(populate_existing=True)
    )


async def _endpoint(
    session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await session.scalar(
        _scoped_endpoints(caller).where(WebhookEndpoint.id == endpoint_id)
    )
    if endpoint is None:
        raise NotFound(message=f"Webhook introuvable : {endpoint_id}.", field="id")
    return endpoint


async def create_endpoint(
    session: AsyncSession, caller: Caller, *, data: EndpointInput, settings: Settings
) -> WithSecret:
    """A new endpoint; it receives events recorded from now on. The secret is shown once."""
    require(caller, Operation.SETTINGS_MANAGE)
    url = await _checked_url(data.url, settings)
    event_types = _event_types(data.event_types)
    secret = _new_secret()
    now = utcnow()
    latest = await session.scalar(
        select(func.coalesce(func.max(Event.seq), 0)).where(Event.account_id == caller.account_id)
    )
    endpoint = WebhookEndpoint(
        account_id=caller.account_id,
        url=url,
        description=_description(data.description),
        event_types=event_types,
        is_active=data.is_active,
        secret_encrypted=cipher_for(settings).encrypt(secret),
        last_event_seq=int(latest or 0),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    audit.record(session, caller, "webhook.created", endpoint, ["url", "event_types", "secret"])
    return WithSecret(endpoint=endpoint, secret=secret)


async def list_endpoints(
    session: AsyncSession, caller: Caller, *, limit: int = 100, offset: int = 0
) -> Page[WebhookEndpoint]:
    require(caller, Operation.SETTINGS_MANAGE)
    stmt = _scoped_endpoints(caller).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return await page(session, stmt, limit, offset)


async def get_endpoint(
    session: AsyncSession, caller: Caller, *, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    require(caller, Operation.SETTINGS_MANAGE)
    return await _endpoint(session, caller, endpoint_id)


async def update_endpoint(
    session: AsyncSession,
    caller: Caller,
    *,
    endpoint_id: uuid.UUID,
    changes: EndpointChanges,
    settings: Settings,
) -> WebhookEndpoint:
    require(caller, Operation.SETTINGS_MANAGE)
    endpoint = await _endpoint(session, caller, endpoint_id)
    if changes.url is not None:
        endpoint.url = await _checked_url(changes.url, settings)
    if changes.event_types is not None:
        endpoint.event_types = _event_types(changes.event_types)
    if changes.description is not None:
        endpoint.description = _description(changes.description)
    if changes.is_active is not None:
        endpoint.is_active = changes.is_active
        if changes.is_active:
            delivery.enqueue(session)  # events held while paused go out now
    endpoint.updated_at = utcnow()
    await session.flush()
    audit.record(session, caller, "webhook.updated", endpoint, audit.given(
        url=changes.url, event_types=changes.event_types, description=changes.description,
        is_active=changes.is_active,
    ))  # fmt: skip
    return endpoint


async def delete_endpoint(session: AsyncSession, caller: Caller, *, endpoint_id: uuid.UUID) -> None:
    require(caller, Operation.SETTINGS_MANAGE)
    endpoint = await _endpoint(session, caller, endpoint_id)
    audit.record(session, caller, "webhook.deleted", endpoint)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession,
    caller: Caller,
    *,
    endpoint_id: uuid.UUID,
    settings: Settings,
    expires_in_hours: float = ROTATION_GRACE_HOURS,
    now: datetime | None = None,
) -> WithSecret:
    """A new secret (shown once); the replaced one keeps signing for `expires_in_hours`."""
    require(caller, Operation.SETTINGS_MANAGE)
    # Checked as a number: 1e308 hours is no timedelta at all (an OverflowError).
    if not 0 <= expires_in_hours <= MAX_GRACE_HOURS:
        raise ValidationFailed.of(
            [FieldError("expires_in_hours", f"doit être compris entre 0 et {MAX_GRACE_HOURS}")]
        )
    grace = timedelta(hours=expires_in_hours)
    endpoint = await _endpoint(session, caller, endpoint_id)
    now = now or utcnow()
    secret = _new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + grace
    endpoint.secret_encrypted = cipher_for(settings).encrypt(secret)
    endpoint.updated_at = now
    await session.flush()
    audit.record(session, caller, "webhook.updated", endpoint, ["secret"])
    return WithSecret(endpoint=endpoint, secret=secret)


async def enable_endpoint(
    session: AsyncSession, caller: Caller, *, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    """Re-enable an endpoint (after automatic disabling, or a pause): the held events go out."""
    require(caller, Operation.SETTINGS_MANAGE)
    endpoint = await _endpoint(session, caller, endpoint_id)
    endpoint.is_active = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None
    endpoint.updated_at = utcnow()
    await session.flush()
    audit.record(session, caller, "webhook.updated", endpoint, ["is_active"])
    delivery.enqueue(session)
    return endpoint


async def list_deliveries(
    session: AsyncSession,
    caller: Caller,
    *,
    endpoint_id: uuid.UUID,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[WebhookDelivery]:
    """An endpoint's deliveries, newest event first."""
    require(caller, Operation.SETTINGS_MANAGE)
    await _endpoint(session, caller, endpoint_id)
    stmt = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.account_id == caller.account_id,
            WebhookDelivery.endpoint_id == endpoint_id,
        )
        .order_by(WebhookDelivery.event_seq.desc(), WebhookDelivery.created_at.desc())
        .execution_options(populate_existing=True)
    )
    if status is not None:
        if status not in DELIVERY_STATUSES:
            allowed = ", ".join(DELIVERY_STATUSES)
            raise ValidationFailed.of([FieldError("status", f"attendu parmi : {allowed}")])
        stmt = stmt.where(WebhookDelivery.status == status)
    return await page(session, stmt, limit, offset)


async def list_attempts(
    session: AsyncSession, caller: Caller, *, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> list[WebhookAttempt]:
    """Every attempt of one delivery of the endpoint, first to last."""
    require(caller, Operation.SETTINGS_MANAGE)
    found = await session.scalar(
        select(WebhookDelivery.id).where(
            WebhookDelivery.account_id == caller.account_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.id == delivery_id,
        )
    )
    if found is None:
        raise NotFound(message=f"Livraison introuvable : {delivery_id}.", field="delivery_id")
    return list(
        await session.scalars(
            select(WebhookAttempt)
            .where(
                WebhookAttempt.account_id == caller.account_id,
                WebhookAttempt.delivery_id == delivery_id,
            )
            .order_by(WebhookAttempt.attempt)
        )
    )


async def replay_event(
    session: AsyncSession,
    caller: Caller,
    *,
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID,
    now: datetime | None = None,
) -> WebhookDelivery:
    """Deliver one event of the account to the endpoint again, as a new delivery (a
    product's event of a change set too, by the id its receivers saw)."""
    require(caller, Operation.SETTINGS_MANAGE)
    endpoint = await _endpoint(session, caller, endpoint_id)
    found = (await session.execute(delivery.event_by_id(caller.account_id, event_id))).first()
    told = [] if found is None else await delivery.Expansion(session).keys(found, [ALL_EVENTS])
    event = next((key for key in told if key.id == event_id), None)
    if event is None:
        raise NotFound(message=f"Événement introuvable : {event_id}.", field="event_id")
    row = delivery.delivery_rows(
        endpoint.id, caller.account_id, [event], now or utcnow(), replay=True
    )[0]
    await session.execute(insert(WebhookDelivery), [row])
    delivery.enqueue(session)
    replayed = await session.get(WebhookDelivery, row["id"])
    assert replayed is not None  # inserted just above, in this transaction
    return replayed


async def replay_range(
    session: AsyncSession,
    caller: Caller,
    *,
    endpoint_id: uuid.UUID,
    since: datetime,
    until: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Deliver again every subscribed event that occurred in [since, until); returns how many."""
    require(caller, Operation.SETTINGS_MANAGE)
    now = now or utcnow()
    since = utc_moment("since", since)
    until = utc_moment("until", until) if until else now
    if until <= since:
        raise ValidationFailed.of([FieldError("until", "doit être postérieur à since")])
    endpoint = await _endpoint(session, caller, endpoint_id)
    found = (
        await session.execute(
            delivery.events_in_range(caller.account_id, endpoint.event_types, since, until).limit(
                MAX_REPLAY + 1
            )
        )
    ).all()
    expansion = delivery.Expansion(session)
    events: list[delivery.EventKey] = []
    for event in found:
        events += await expansion.keys(event, endpoint.event_types, (since, until))
        if len(events) > MAX_REPLAY:
            break
    if len(events) > MAX_REPLAY:
        raise ValidationFailed.of(
            [
                FieldError(
                    "until", f"plus de {MAX_REPLAY} événements : réduisez l'intervalle", "too_many"
                )
            ]
        )
    if events:
        rows = delivery.delivery_rows(endpoint.id, caller.account_id, events, now, replay=True)
        await session.execute(insert(WebhookDelivery), rows)
        delivery.enqueue(session)
    return len(events)
