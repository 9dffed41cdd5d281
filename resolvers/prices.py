"""Batch price updates by EAN: the selling price (`price`, VAT included) and the
purchase price (`cost_price`, VAT excluded), each optional but not both."""

from collections.abc import Sequence
from typing import Any, NotRequired

from pydantic import BaseModel, ConfigDict, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession
from typing_extensions import TypedDict

from pim.auth import Caller
from pim.clock import write_timestamp
from resolvers import batches, events
from resolvers.batches import EanBatchResult, Item
from resolvers.errors import FieldError
from resolvers.product_fields import EanText, PlainEan, PlainPrice, PriceValue

MAX_ITEMS = batches.MAX_ITEMS
PRICE_COLUMNS = ("price", "cost_price")
WITH_PRICES = batches.Along(columns=PRICE_COLUMNS)


class PriceItem(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    ean: EanText
    price: PriceValue | None = None
    cost_price: PriceValue | None = None


class _PlainPriceItem(TypedDict):
    """PriceItem's strict twin (batches.validate_items): no object, and only the cents'
    rounding as a Python call."""

    __pydantic_config__ = ConfigDict(extra="ignore", str_strip_whitespace=True)  # type: ignore[misc]

    ean: PlainEan
    price: NotRequired[PlainPrice | None]
    cost_price: NotRequired[PlainPrice | None]


PLAIN_ITEMS = TypeAdapter(list[_PlainPriceItem])


def _needs_a_price(item: Item) -> FieldError | None:
    if item.get("price") is None and item.get("cost_price") is None:
        return FieldError("", "au moins un prix est requis (vente ou achat)", "missing")
    return None


async def update_prices(
    session: AsyncSession,
    caller: Caller,
    *,
    items: Sequence[Any],
    max_items: int = MAX_ITEMS,
) -> EanBatchResult:
    """Set each item's prices; items are raw dicts {ean, price?, cost_price?}."""
    batch = await batches.prepare(
        session,
        caller,
        PriceItem,
        items,
        max_items=max_items,
        key=lambda i: i["ean"],
        check=_needs_a_price,
        plain=PLAIN_ITEMS,
        along=WITH_PRICES,
    )
    results, current = batch.results, batch.current
    # The rows to write, and their EANs: the items that change a price, in one pass.
    rows: list[dict[str, Any]] = []
    eans: list[str | None] = []
    for entry in batch.found:
        item, product_id = entry.item, entry.product_id
        before = current[product_id]
        price, cost_price = item.get("price"), item.get("cost_price")
        if (price is not None and price != before["price"]) or (
            cost_price is not None and cost_price != before["cost_price"]
        ):
            entry.result.changed = True
            rows.append({"id": product_id, "price": price, "cost_price": cost_price})
            eans.append(entry.result.ean)
    if not rows:
        return EanBatchResult(results)

    stamp = await write_timestamp(session)
    # A price left out (None) keeps its stored value. The row's updated_at stays (its
    # index too, so PostgreSQL can update the row in place): the stamp tells the change.
    await batches.update_products(session, caller.account_id, rows, stamp)
    await events.record(
        session,
        [events.event_row(caller.account_id, "price.updated", events.batch_payload(eans), stamp)],
    )
    return EanBatchResult(results)
