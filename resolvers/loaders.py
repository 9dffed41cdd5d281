"""Batch lookups behind the GraphQL DataLoaders: one query per batch of keys.

Each takes the keys of one batch and returns values in key order (None when
absent), scoped to the caller's account like every other read.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Brand,
    Category,
    PriceList,
    PriceListItem,
    Supplier,
    SupplierProduct,
)
from pim.auth import Caller
from resolvers.permissions import Operation, require


async def _by_id(
    session: AsyncSession, caller: Caller, model: Any, keys: Sequence[uuid.UUID]
) -> list[Any]:
    require(caller, Operation.PRODUCTS_READ)
    rows = await session.scalars(
        select(model).where(model.account_id == caller.account_id, model.id.in_(list(keys)))
    )
    found = {row.id: row for row in rows}
    return [found.get(k) for k in keys]


async def brands(
    session: AsyncSession, caller: Caller, keys: Sequence[uuid.UUID]
) -> list[Brand | None]:
    return await _by_id(session, caller, Brand, keys)


async def categories(
    session: AsyncSession, caller: Caller, keys: Sequence[uuid.UUID]
) -> list[Category | None]:
    return await _by_id(session, caller, Category, keys)


async def suppliers(
    session: AsyncSession, caller: Caller, keys: Sequence[uuid.UUID]
) -> list[Supplier | None]:
    return await _by_id(session, caller, Supplier, keys)


async def _grouped_by_product(
    session: AsyncSession,
    caller: Caller,
    product_ids: Sequence[uuid.UUID],
    child: Any,
    parent: Any,
    join_on: Any,
    order_by: Any,
) -> list[list[tuple[Any, Any]]]:
    """Rows of `child` (with their `parent`) per product, in product_ids order."""
    require(caller, Operation.PRODUCTS_READ)
    rows = await session.execute(
        select(child, parent)
        .join(parent, join_on)
        .where(child.account_id == caller.account_id, child.product_id.in_(list(product_ids)))
        .order_by(order_by)
    )
    grouped: dict[uuid.UUID, list[tuple[Any, Any]]] = {}
    for item, owner in rows:
        grouped.setdefault(item.product_id, []).append((item, owner))
    return [grouped.get(k, []) for k in product_ids]


async def supplier_stocks(
    session: AsyncSession, caller: Caller, product_ids: Sequence[uuid.UUID]
) -> list[list[tuple[SupplierProduct, Supplier]]]:
    return await _grouped_by_product(
        session, caller, product_ids, SupplierProduct, Supplier,
        Supplier.id == SupplierProduct.supplier_id, Supplier.name,
    )  # fmt: skip


async def channel_prices(
    session: AsyncSession, caller: Caller, product_ids: Sequence[uuid.UUID]
) -> list[list[tuple[PriceListItem, PriceList]]]:
    return await _grouped_by_product(
        session, caller, product_ids, PriceListItem, PriceList,
        PriceList.id == PriceListItem.price_list_id, PriceList.channel,
    )  # fmt: skip
