"""The live product count of an account, exact, without locking writers against each other."""

import uuid

from sqlalchemy import BindParameter, ScalarSelect, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ProductCountDelta

# Fold the deltas into one row every this many writes, to keep reads short.
FOLD_EVERY = 64


async def add_live_products(session: AsyncSession, account_id: uuid.UUID, delta: int) -> None:
    """Called by every write that creates, restores or deletes products."""
    if not delta:
        return
    row_id = await session.scalar(
        insert(ProductCountDelta)
        .values(account_id=account_id, delta=delta)
        .returning(ProductCountDelta.id)
    )
    if row_id is not None and row_id % FOLD_EVERY == 0:
        await _fold(session, account_id, row_id)


async def _fold(session: AsyncSession, account_id: uuid.UUID, up_to: int) -> None:
    # Each deleted row's delta moves exactly once, even with two folds at a time, and
    # a fold never waits for another: rows another open fold holds are left to it (two
    # import chunks in flight would otherwise deadlock, each waiting for the other).
    held_by_none = (
        select(ProductCountDelta.id)
        .where(ProductCountDelta.account_id == account_id, ProductCountDelta.id <= up_to)
        .with_for_update(skip_locked=True)
    )
    moved = await session.scalars(
        delete(ProductCountDelta)
        .where(ProductCountDelta.id.in_(held_by_none))
        .returning(ProductCountDelta.delta)
    )
    total = sum(moved)
    if total:
        await session.execute(insert(ProductCountDelta).values(account_id=account_id, delta=total))


def live_products_query(account_id: uuid.UUID | BindParameter[uuid.UUID]) -> ScalarSelect[int]:
    """The count as a scalar subquery, to ride along with another statement."""
    return (
        select(func.coalesce(func.sum(ProductCountDelta.delta), 0))
        .where(ProductCountDelta.account_id == account_id)
        .scalar_subquery()
    )


async def live_products(session: AsyncSession, account_id: uuid.UUID) -> int:
    total = await session.scalar(select(live_products_query(account_id)))
    return int(total or 0)
