"""A product's latest change: its row's `updated_at`, or the narrow stamp a stock or
price batch leaves in product_changes, whichever is later.

Stock and price batches stamp the narrow rows instead of rewriting thousands of wide
product rows; every read that shows or orders by a product's `updated_at` uses
`LATEST`; delta sync merges the two index orders (`sides`), and `updated_since` filters
by both (`changed_in`).
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Interval,
    Join,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, ProductChange
from pim.clock import MICROSECOND
from pim.sql import bulk_upsert, greatest, unnest_write

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

_Ts = TypeVarTuple("_Ts")
Window = Callable[[ColumnElement[datetime]], list[ColumnElement[bool]]]
# (id, at) of changed products.
Side = Select[uuid.UUID, datetime]


_KEY = ["account_id", "product_id"]
# The type a batch's times travel as, in arrays: they are aware UTC datetimes already
# (write_timestamp), so the column's UTCDateTime, a Python call a value (5,000 of them
# in a batch), has nothing to do.
AWARE_TIMES = DateTime(timezone=True)
_ONE_MICROSECOND: ColumnElement[Any] = literal_column("INTERVAL '1 microsecond'", Interval())


def at_offset(stamp: datetime) -> Callable[[ColumnElement[int]], ColumnElement[datetime]]:
    """In SQL, `stamp` plus an offset in microseconds (as batches.stamps times a write's
    products): one parameter where an array of 5,000 times cost the driver about 8 ms
    to encode, a type check and a conversion a value."""
    base = bindparam(None, stamp, type_=AWARE_TIMES)
    return lambda offset: base + offset * _ONE_MICROSECOND


async def stamp(
    session: AsyncSession, account_id: uuid.UUID, when: Mapping[uuid.UUID, datetime]
) -> None:
    """Record that each product changed at its time, in one set-based upsert."""
    rows = [{"product_id": pid, "changed_at": at} for pid, at in when.items()]
    await bulk_upsert(
        session, PRODUCT_CHANGES, rows, conflict=_KEY, update=["changed_at"],
        same={"account_id": account_id},
    )  # fmt: skip


async def upsert_stamped(
    session: AsyncSession,
    table: Table,
    account_id: uuid.UUID,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    update: Sequence[str],
    first: datetime | None = None,
) -> None:
    """bulk_upsert the account's `rows` of `table` (a product's record: rows hold its
    `id`, that of the record read before if it exists, product_id and updated_at), and
    `stamp` each product at its row's updated_at. With `first`, the rows' products are
    distinct and the rows hold no updated_at: the i-th row's is `first` plus i
    microseconds, computed in SQL on PostgreSQL.

    On PostgreSQL one statement: the records found by id are updated, the others
    inserted (pim.sql.unnest_write), and the rows written feed the stamps, so the
    batch's ids and times are encoded and sent once."""
    same = {"account_id": account_id}
    written = unnest_write(
        session, table, rows, conflict=conflict, update=update, same=same,
        returning=["product_id", "updated_at"], types={"updated_at": AWARE_TIMES},
        positioned=None if first is None else {"updated_at": at_offset(first)},
    )  # fmt: skip
    if written is None:
        if first is not None:
            rows = [{**row, "updated_at": first + i * MICROSECOND} for i, row in enumerate(rows)]
        await bulk_upsert(session, table, rows, conflict=conflict, update=update, same=same)
        await stamp(session, account_id, {row["product_id"]: row["updated_at"] for row in rows})
        return
    await stamp_written(session, account_id, written.c.product_id, written.c.updated_at)


async def stamp_written(
    session: AsyncSession,
    account_id: uuid.UUID,
    product_id: ColumnElement[uuid.UUID],
    at: ColumnElement[datetime],
) -> None:
    """`stamp` the products a data-modifying CTE wrote (PostgreSQL): `product_id` and
    `at` are columns of its RETURNING, and the write and the stamps are one statement.

    The products stamped before (most of a batch's) are moved by an UPDATE, the others
    inserted: an upsert locks each row it updates first, one WAL record a row more (5,000
    rows: 24,800 records against 19,800). A stamp another writer inserts meanwhile, out
    of the UPDATE's sight, is updated by the insert's ON CONFLICT."""
    account = bindparam(None, account_id, type_=PRODUCT_CHANGES.c.account_id.type)
    # A product written twice (two supplier records) is stamped once, at its time.
    written = select(product_id.label("product_id"), at.label("at")).distinct().cte("stamps")
    moved = (
        update(PRODUCT_CHANGES)
        .where(
            PRODUCT_CHANGES.c.account_id == account,
            PRODUCT_CHANGES.c.product_id == written.c.product_id,
        )
        .values(changed_at=written.c.at)
        .returning(PRODUCT_CHANGES.c.product_id)
        .cte("moved")
    )
    added = postgresql.insert(PRODUCT_CHANGES).from_select(
        ["account_id", "product_id", "changed_at"],
        select(account, written.c.product_id, written.c.at).where(
            ~select(moved.c.product_id).where(moved.c.product_id == written.c.product_id).exists()
        ),
    )
    await session.execute(
        added.on_conflict_do_update(
            index_elements=_KEY, set_={"changed_at": added.excluded.changed_at}
        )
    )


# With WITH_CHANGES: the product's own row holds its latest change (a tie goes to the row).
_ROW_HOLDS_LATEST: ColumnElement[bool] = or_(_STAMP.is_(None), _STAMP <= _UPDATED)


def row_side(
    columns: Select[*_Ts], account_id: Any, window: Window, *conditions: ColumnElement[bool]
) -> Select[*_Ts]:
    """`columns` (read from WITH_CHANGES) of the account's products whose own row holds
    their latest change, that change in `window`, in (at, id) order: one ordered walk of
    the products index with a primary-key probe of the stamps per row. Delta sync reads
    its pages' products whole this way, as most of a page comes from this side."""
    return columns.where(
        Product.account_id == account_id, *window(_UPDATED), _ROW_HOLDS_LATEST, *conditions
    ).order_by(_UPDATED, Product.id)


def sides(account_id: Any, window: Window, *conditions: ColumnElement[bool]) -> tuple[Side, Side]:
    """(id, at) of the account's products whose latest change `at` is in `window`, in
    two parts: the products whose own row holds it (`row_side`), and those whose stamp
    does. Each part is one ordered walk of one index, by (at, id), with a primary-key
    probe of the other table per row: a page of delta sync merges the first rows of
    both, where one query over their union would sort the whole window.
    `conditions` filter the products further.
    """
    rows = row_side(
        select(Product.id.label("id"), _UPDATED.label("at")).select_from(WITH_CHANGES),
        account_id,
        window,
        *conditions,
    )
    earlier_row = (
        select(Product.id)
        .where(
            Product.account_id == account_id,
            Product.id == ProductChange.product_id,
            _UPDATED < _STAMP,
            *conditions,
        )
        .exists()
    )
    stamps = (
        select(ProductChange.product_id.label("id"), _STAMP.label("at"))
        .where(ProductChange.account_id == account_id, *window(_STAMP), earlier_row)
        .order_by(_STAMP, ProductChange.product_id)
    )
    return rows, stamps


def changed_in(account_id: Any, window: Window, *conditions: ColumnElement[bool]) -> Select[Any]:
    """The ids of the account's products whose latest change is in `window`."""
    rows, stamps = sides(account_id, window, *conditions)
    return select(union_all(rows.order_by(None), stamps.order_by(None)).subquery("changes").c.id)


def newest_change(account_id: Any) -> Select[datetime, datetime]:
    """The account's latest row change and latest stamp."""
    return select(
        select(func.max(Product.updated_at))
        .where(Product.account_id == account_id)
        .scalar_subquery(),
        select(func.max(_STAMP)).where(ProductChange.account_id == account_id).scalar_subquery(),
    )
