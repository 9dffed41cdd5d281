"""Counting the per-product events receivers get, whether the outbox holds them one row
each or inside change sets (resolvers.change_sets), which the dispatcher expands."""

import uuid
from collections import Counter

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event
from resolvers import change_sets


async def product_event_types(session: AsyncSession, account_id: uuid.UUID) -> Counter[str]:
    """How many product.created and product.updated events the account's outbox tells."""
    rows = await session.execute(
        select(Event.id, Event.type, Event.occurred_at, Event.payload).where(
            Event.account_id == account_id,
            Event.type.in_(["product.created", "product.updated", change_sets.CHANGE_SET]),
        )
    )
    told: Counter[str] = Counter()
    for event_id, type_, occurred_at, payload in rows:
        if type_ == change_sets.CHANGE_SET:
            told.update(item.type for item in change_sets.items(event_id, occurred_at, payload))
        else:
            told[type_] += 1
    return told
