"""A product's latest change: its row's `updated_at`, or the narrow stamp a stock or
price batch leaves in product_changes, whichever is later.

Stock and price batches stamp the narrow rows instead of rewriting thousands of wide
product rows; every read that shows or orders by a product's `updated_at` uses
`LATEST`, and delta sync walks both orders at once (`changed_in`).
"""

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Join,
    Select,
    Subquery,
    Table,
    and_,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, ProductChange
from pim.sql import bulk_upsert, greatest

PRODUCT_CHANGES: Table = ProductChange.__table__  # type: ignore[assignment]
_STAMP: ColumnElement[datetime] = PRODUCT_CHANGES.c.changed_at
_UPDATED: ColumnElement[datetime] = Product.__table__.c.updated_at

# Products with their stamp, if any: the stamp's primary key (account, product) serves it.
WITH_CHANGES: Join = Product.__table__.outerjoin(
    PRODUCT_CHANGES,
    and_(ProductChange.account_id == Product.account_id, ProductChange.product_id == Product.id),
)
LATEST: ColumnElement[datetime] = greatest(
    Product.updated_at, func.coalesce(_STAMP, Product.updated_at)
)

Window = Callable[[ColumnElement[datetime]], list[ColumnElement[bool]]]


async def stamp(
    session: AsyncSession, account_id: uuid.UUID, when: Mapping[uuid.UUID, datetime]
) -> None:
    """Record that each product changed at its time, in one set-based upsert."""
    rows = [
        {"account_id": account_id, "product_id": pid, "changed_at": at} for pid, at in when.items()
    ]
    await bulk_upsert(
        session, PRODUCT_CHANGES, rows, conflict=["account_id", "product_id"], update=["changed_at"]
    )


def changed_in(account_id: Any, window: Window, *conditions: ColumnElement[bool]) -> Subquery:
    """(id, at) of the account's products whose latest change `at` is in `window`.

    Two ordered index walks merged: products whose own row holds the latest change (by
    products' (account_id, updated_at, id) index), and products whose stamp does (by
    product_changes' (account_id, changed_at, product_id)); each product is in exactly
    one of them (a tie goes to the row). `conditions` filter the products further.
    """
    row_wins = (
        select(Product.id.label("id"), Product.updated_at.label("at"))
        .select_from(WITH_CHANGES)
        .where(
            Product.account_id == account_id,
            *window(_UPDATED),
            or_(_STAMP.is_(None), Product.updated_at >= _STAMP),
            *conditions,
        )
    )
    stamp_wins = (
        select(ProductChange.product_id.label("id"), _STAMP.label("at"))
        .join(Product, Product.id == ProductChange.product_id)
        .where(
            ProductChange.account_id == account_id,
            *window(_STAMP),
            Product.updated_at < _STAMP,
            *conditions,
        )
    )
    return union_all(row_wins, stamp_wins).subquery("changes")


def newest_change(account_id: Any) -> Select[datetime, datetime]:
    """The account's latest row change and latest stamp."""
    return select(
        select(func.max(Product.updated_at))
        .where(Product.account_id == account_id)
        .scalar_subquery(),
        select(func.max(_STAMP)).where(ProductChange.account_id == account_id).scalar_subquery(),
    )
