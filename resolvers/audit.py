"""The audit trail of administrative actions: recorded by the resolvers that act, in
their own transaction (an action and its record commit or roll back together), read
newest first by `settings:manage`, and purged by the retention command.

A record names the fields an action set or changed, never their values: the values
of connectors' credentials or webhook secrets must not leak into a log read by others.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEvent
from pim.auth import Caller
from pim.timeutil import as_utc, isoformat_z, parse_iso8601
from resolvers.errors import FieldError, ValidationFailed
from resolvers.paging import decode_cursor, encode_cursor
from resolvers.permissions import Operation, require

# A Literal, so that mypy refuses an action misspelt in a resolver (it could never be
# filtered on).
Action = Literal[
    "key.created", "key.revoked", "key.rotated",
    "connector.created", "connector.updated", "connector.deleted",
    "webhook.created", "webhook.updated", "webhook.deleted",
    "automation.created", "automation.updated", "automation.deleted",
]  # fmt: skip
ACTIONS: tuple[str, ...] = get_args(Action)
MAX_PAGE = 200


class Target(Protocol):
    """What an action is done to: every administrative row belongs to an account."""

    id: uuid.UUID
    account_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditEvent]
    # One per item: passed as `after`, the next page starts past that item.
    cursors: list[str] = field(default_factory=list)
    has_next: bool = False


def record(
    session: AsyncSession,
    caller: Caller | None,
    action: Action,
    target: Target,
    changes: Iterable[str] = (),
) -> None:
    """Add the record of `action` on `target` to the acting transaction.

    `caller` is None for the `pim` command run on the server. The target type is the
    action's first word ("webhook.updated" → "webhook").
    """
    session.add(
        AuditEvent(
            account_id=target.account_id,
            actor_key_id=caller.key_id if caller else None,
            action=action,
            target_type=action.partition(".")[0],
            target_id=str(target.id),
            changes=sorted(set(changes)),
        )
    )


def given(**fields: Any) -> list[str]:
    """The names of the fields given a value (not None): an update's changed fields."""
    return [name for name, value in fields.items() if value is not None]


def _check_filters(action: str | None, first: int) -> None:
    errors = []
    if action is not None and action not in ACTIONS:
        errors.append(FieldError("action", f"action inconnue (attendu : {', '.join(ACTIONS)})"))
    if not 1 <= first <= MAX_PAGE:
        errors.append(FieldError("limit", f"doit être compris entre 1 et {MAX_PAGE}"))
    if errors:
        raise ValidationFailed.of(errors)


def _after_key(after: str) -> tuple[datetime, uuid.UUID]:
    created, event_id = decode_cursor(after)
    try:
        return parse_iso8601(str(created)), uuid.UUID(str(event_id))
    except ValueError as exc:
        raise ValidationFailed.of([FieldError("after", "curseur invalide")]) from exc


async def list_events(
    session: AsyncSession,
    caller: Caller,
    *,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    first: int = 50,
    after: str | None = None,
) -> AuditPage:
    """The account's records in [since, until), newest first, after a keyset cursor.

    No total: counting a long trail on every page costs more than the page itself.
    """
    require(caller, Operation.SETTINGS_MANAGE)
    _check_filters(action, first)
    stmt = select(AuditEvent).where(AuditEvent.account_id == caller.account_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= as_utc(since))
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < as_utc(until))
    if after is not None:
        stmt = stmt.where(tuple_(AuditEvent.created_at, AuditEvent.id) < _after_key(after))
    stmt = stmt.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(first + 1)
    rows = list(await session.scalars(stmt))
    items = rows[:first]
    cursors = [encode_cursor([isoformat_z(e.created_at), str(e.id)]) for e in items]
    return AuditPage(items=items, cursors=cursors, has_next=len(rows) > first)
