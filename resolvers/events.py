"""Writing change events to the outbox, inside the transaction of the change."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event
from pim.ids import uuid7
from pim.sql import bulk_insert
from resolvers import change_sets, webhook_delivery
from resolvers.change_sets import ProductChange

EVENTS: Table = Event.__table__  # type: ignore[assignment]
# Batch stock and price events name the first EANs only, as the spec says.
BATCH_EAN_SAMPLE = 50
# From this many product changes in one write, they are recorded as change sets. Below
# it, one event per product: the saving is small, and the writes of one or a few
# products (the interactive and WinDev calls) stay readable in the outbox row by row.
CHANGE_SET_MIN = 50


def event_row(
    account_id: uuid.UUID,
    type_: str,
    payload: dict[str, Any],
    occurred_at: datetime,
    subject_id: uuid.UUID | None = None,
    *,
    id_: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "id": id_ or uuid7(),
        "account_id": account_id,
        "type": type_,
        "subject_id": subject_id,
        "payload": payload,
        "occurred_at": occurred_at,
    }


def product_events(account_id: uuid.UUID, changes: Sequence[ProductChange]) -> list[dict[str, Any]]:
    """The outbox rows telling created and updated products, in the given order."""
    if len(changes) < CHANGE_SET_MIN:
        return [event_row(account_id, c.type, c.data(), c.at, c.id) for c in changes]
    return [
        event_row(account_id, change_sets.CHANGE_SET, change_sets.payload(run), run[0].at,
                  id_=change_sets.set_id())
        for run in change_sets.split(changes)
    ]  # fmt: skip


def batch_payload(eans: Sequence[str | None], **extra: Any) -> dict[str, Any]:
    listed = [e for e in eans if e]
    return {"count": len(eans), "eans": listed[:BATCH_EAN_SAMPLE], **extra}


async def record(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append events in the given order (their sequence numbers follow it).

    Webhook endpoints of the account hear about them once the transaction commits.
    """
    if rows:
        await bulk_insert(session, EVENTS, rows)
        for account_id in {row["account_id"] for row in rows}:
            await webhook_delivery.enqueue_if_subscribed(session, account_id)
