"""Batch stock updates by EAN: generic stock, or the supplier-level record when a
supplier code is given. A batch of any size is a handful of set-based statements."""

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter
from sqlalchemy import ColumnElement, FromClause, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from typing_extensions import TypedDict

from models import SupplierProduct
from pim.auth import Caller
from pim.clock import write_timestamp
from pim.db import fetch
from pim.ids import uuid7
from pim.sql import among, unique
from resolvers import batches, catalog, changes, events
from resolvers.batches import EanBatchResult
from resolvers.bounds import Count
from resolvers.product_fields import EanText, PlainEan
from resolvers.product_writes import (
    GENERIC_STOCK,
    PRODUCT_STOCKS,
    SUPPLIER_PRODUCTS,
    SUPPLIER_STOCK,
)

MAX_ITEMS = batches.MAX_ITEMS


def _generic(
    products: FromClause,
) -> tuple[FromClause, ColumnElement[bool], Sequence[ColumnElement[Any]]]:
    """Each product's generic stock record, if any (unique on account and product)."""
    condition = and_(
        PRODUCT_STOCKS.c.account_id == products.c.account_id,
        PRODUCT_STOCKS.c.product_id == products.c.id,
    )
    return (
        PRODUCT_STOCKS,
        condition,
        [PRODUCT_STOCKS.c.id.label("stock_id"), PRODUCT_STOCKS.c.quantity],
    )


# The generic stock records come with the products.
WITH_GENERIC = batches.Along(join=_generic)


class StockItem(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    ean: EanText
    stock: Count
    supplier_code: Annotated[str, Field(max_length=64)] | None = None


class _PlainStockItem(TypedDict):
    """StockItem's strict twin (batches.validate_items): no object, no Python call an item."""

    __pydantic_config__ = ConfigDict(extra="ignore", str_strip_whitespace=True)  # type: ignore[misc]

    ean: PlainEan
    stock: Annotated[Count, Strict()]
    supplier_code: NotRequired[Annotated[str, Strict(), Field(max_length=64)] | None]


PLAIN_ITEMS = TypeAdapter(list[_PlainStockItem])


async def update_stock(
    session: AsyncSession,
    caller: Caller,
    *,
    items: Sequence[Any],
    max_items: int = MAX_ITEMS,
) -> EanBatchResult:
    """Set each item's stock; items are raw dicts {ean, stock, supplier_code?}."""
    batch = await batches.prepare(
        session,
        caller,
        StockItem,
        items,
        max_items=max_items,
        key=lambda i: (i["ean"], i.get("supplier_code") or ""),
        plain=PLAIN_ITEMS,
        along=WITH_GENERIC,
    )
    results, found = batch.results, batch.found
    if not found:
        return EanBatchResult(results)
    account_id = caller.account_id
    codes = unique(code for v in found if (code := v.item.get("supplier_code")))
    # An unknown code becomes a supplier named after it, as in product writes.
    suppliers = await catalog.supplier_ids_for(session, account_id, codes)
    by_supplier = await _supplier_records(session, account_id, found, list(suppliers.values()))

    # The items that change a stock, each with the record it writes if that exists (id,
    # quantity); the generic records came with the products.
    changed: list[tuple[batches.Valid, tuple[uuid.UUID, int] | None]] = []
    current = batch.current
    for entry in found:
        item = entry.item
        if code := item.get("supplier_code"):
            record = by_supplier.get((entry.product_id, suppliers[code]))
        else:
            row = current[entry.product_id]
            record = None if row["stock_id"] is None else (row["stock_id"], row["quantity"])
        if record is None or record[1] != item["stock"]:
            entry.result.changed = True
            changed.append((entry, record))
    if not changed:
        return EanBatchResult(results)

    stamp = await write_timestamp(session)
    generic_rows: list[dict[str, Any]] = []
    supplier_rows: list[dict[str, Any]] = []
    for entry, record in changed:
        # An existing record is updated by the id the lookup read (upsert_stamped); a
        # new one, or one deleted since the lookup, is inserted under its row's id.
        row = {"id": uuid7() if record is None else record[0], "product_id": entry.product_id}
        code = entry.item.get("supplier_code")
        if code:
            row["supplier_id"], row["stock"] = suppliers[code], entry.item["stock"]
            supplier_rows.append(row)
        else:
            row["quantity"] = entry.item["stock"]
            generic_rows.append(row)
    # Each product has one time (batches.stamps): the generic rows' products (distinct)
    # come first, timed by their position in SQL; a supplier record's product keeps its
    # generic row's time.
    if supplier_rows:
        when = batches.stamps([r["product_id"] for r in generic_rows + supplier_rows], stamp)
        for row in supplier_rows:
            row["updated_at"] = when[row["product_id"]]
    # Delta sync and every updated_at see the change through the narrow stamp: the wide
    # product rows stay as they are.
    await changes.upsert_stamped(
        session, PRODUCT_STOCKS, account_id, generic_rows, first=stamp,
        conflict=GENERIC_STOCK["conflict"], update=GENERIC_STOCK["update"],
    )  # fmt: skip
    await changes.upsert_stamped(
        session, SUPPLIER_PRODUCTS, account_id, supplier_rows,
        conflict=SUPPLIER_STOCK["conflict"], update=SUPPLIER_STOCK["update"],
    )  # fmt: skip
    eans = unique(v.result.ean for v, _ in changed)
    await events.record(
        session, [events.event_row(account_id, "stock.updated", events.batch_payload(eans), stamp)]
    )
    return EanBatchResult(results)


async def _supplier_records(
    session: AsyncSession,
    account_id: uuid.UUID,
    found: list[batches.Valid],
    supplier_ids: list[uuid.UUID],
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, int]]:
    """The batch's products' supplier-level stock records: (id, stock)."""
    if not supplier_ids:
        return {}
    product_ids = unique(v.product_id for v in found)
    rows = await fetch(
        session,
        select(
            SupplierProduct.product_id,
            SupplierProduct.supplier_id,
            SupplierProduct.id,
            SupplierProduct.stock,
        ).where(
            SupplierProduct.account_id == account_id,
            among(session, SupplierProduct.product_id, product_ids),
            SupplierProduct.supplier_id.in_(supplier_ids),
        ),
    )
    return {(pid, sid): (record_id, stock) for pid, sid, record_id, stock in rows}
