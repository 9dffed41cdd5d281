"""Product change sets: one outbox row telling the product changes of a bulk write
(decision 3 of issue 19).

A write that creates or updates many products records one `product.changes` event per
set instead of one `product.created` / `product.updated` event per product: an import
chunk of 2,000 products writes 1 outbox row instead of 2,000. The set is internal; the
webhook dispatcher expands it, and receivers get, one delivery per product, exactly the
per-product event a plain row would have given them (same type, same `data`, the
product's own time).

A set's items have event ids of their own, derived and never stored: the set's id is a
UUIDv7 whose low ITEM_BITS bits are zero, and item n's id is that id with n in those
bits. They are UUIDv7 too, growing in item order, the same on every retry and replay,
and an item's id alone finds its set (`set_of`).
"""

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pim.ids import uuid7

CHANGE_SET = "product.changes"
ITEM_BITS = 16
ITEM_MASK = (1 << ITEM_BITS) - 1
MAX_ITEMS = 1 << ITEM_BITS
# An item happens at most this long after its set (bulk writes stamp each product one
# microsecond after the one before): a time range finds a set by this much earlier.
MAX_SPAN = timedelta(seconds=1)
# The per-product event fields receivers get as `data`.
DATA_FIELDS = ("id", "ean", "reference", "changed")
_MICROSECOND = timedelta(microseconds=1)


class ProductChange(NamedTuple):
    """A created or updated product, as its event tells it. A named tuple: a bulk write
    makes one a product, and a frozen dataclass cost three times as much to make."""

    id: uuid.UUID
    ean: str | None
    reference: str | None
    changed: list[str]
    created: bool
    at: datetime

    @property
    def type(self) -> str:
        return "product.created" if self.created else "product.updated"

    def data(self) -> dict[str, Any]:
        return {"id": str(self.id), "ean": self.ean, "reference": self.reference,
                "changed": self.changed}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Item:
    """One product's event inside a set, as the dispatcher delivers it."""

    id: uuid.UUID
    type: str
    subject_id: uuid.UUID
    occurred_at: datetime
    data: dict[str, Any]


def set_id() -> uuid.UUID:
    return uuid.UUID(int=uuid7().int & ~ITEM_MASK)


def item_id(of_set: uuid.UUID, index: int) -> uuid.UUID:
    return uuid.UUID(int=of_set.int | index)


def set_of(event_id: uuid.UUID) -> tuple[uuid.UUID, int]:
    """The id of the set an item id would belong to, and the item's index in it."""
    return uuid.UUID(int=event_id.int & ~ITEM_MASK), event_id.int & ITEM_MASK


def split(changes: Sequence[ProductChange]) -> Iterator[Sequence[ProductChange]]:
    """Consecutive runs of at most MAX_ITEMS changes spanning at most MAX_SPAN."""
    start = 0
    for n, change in enumerate(changes):
        if n - start == MAX_ITEMS or change.at - changes[start].at > MAX_SPAN:
            yield changes[start:n]
            start = n
    if start < len(changes):
        yield changes[start:]


def payload(changes: Sequence[ProductChange]) -> dict[str, Any]:
    """The set's payload: each product's data, whether it was created, and its time in
    microseconds after the set's (the first item's)."""
    first = changes[0].at
    # `data()`'s keys written out: one dict a product, not data()'s and then a copy.
    return {
        "products": [
            {"id": str(c.id), "ean": c.ean, "reference": c.reference, "changed": c.changed,
             "created": c.created, "at": (c.at - first) // _MICROSECOND}
            for c in changes
        ]
    }  # fmt: skip


def item(of_set: uuid.UUID, occurred_at: datetime, payload: dict[str, Any], n: int) -> Item:
    stored = payload["products"][n]
    return Item(
        id=item_id(of_set, n),
        type="product.created" if stored["created"] else "product.updated",
        subject_id=uuid.UUID(stored["id"]),
        occurred_at=occurred_at + timedelta(microseconds=stored["at"]),
        # In the stored order: JSONB reorders keys, and a plain event's come out the same way.
        data={k: v for k, v in stored.items() if k in DATA_FIELDS},
    )


def items(of_set: uuid.UUID, occurred_at: datetime, payload: dict[str, Any]) -> list[Item]:
    return [item(of_set, occurred_at, payload, n) for n in range(len(payload["products"]))]
