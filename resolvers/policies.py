"""Each surface's batch policy (how many items, which fields every item must carry,
which EAN lengths it documents), declared once and read by every surface that applies
it: the REST route, the GraphQL field sharing the limit, and the OpenAPI document."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_items: int
    # Fields every item must carry; an item missing one fails alone.
    required: tuple[str, ...] = ()
    # The EAN lengths the surface documents, when fewer than every GTIN length.
    ean_lengths: frozenset[int] | None = None


# POST /api/v1/ext/products/batch, and GraphQL's upsertProducts.
UPSERT_BATCH = BatchPolicy(max_items=500)
# The Products API's documented bulk limit; GraphQL's createProducts/updateProducts share it.
BULK_BATCH = BatchPolicy(max_items=1000)
# The Products API documents EAN-8 and EAN-13 only, for its single and bulk writes.
PRODUCTS_API = BatchPolicy(max_items=BULK_BATCH.max_items, ean_lengths=frozenset({8, 13}))
# POST /api/v1/windev/products/sync: items are matched by EAN, else by reference.
WINDEV_SYNC = BatchPolicy(max_items=1000, required=("reference", "name"))
