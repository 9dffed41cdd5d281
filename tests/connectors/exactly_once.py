"""The exactly-once matrix every adapter goes through: 250 products pushed chunk by
chunk as the sync job pushes them (`jobs.sync.push_products_once`: the connector's
per-request retries, then reconciliation of what a failed call may have created before
anything is sent again), through the faults of tests.connectors.fakes.faults.

A platform's test module serves its strict fake behind `Faults`, arms one fault with
`FAULTS[name](faults, path)` (`path`: a part of the path its product writes go to),
pushes with `push_all` and asserts on its fake's records: exactly 250 items, each
created once, all linked. Token expiry and redirects need the platform's own header
and login path, so `expire_tokens` and `redirect_*` are armed by the module itself.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from connectors.base import ItemOutcome, OutgoingProduct, PlatformAdapter
from jobs.sync import push_products_once
from pim.settings import Settings
from tests.connectors.fakes.faults import Faults

COUNT = 250
# No waits between retries: the faults answer at once and the matrix stays fast.
SETTINGS = Settings(connector_retry_base_delay=0.0, connector_retry_max_delay=0.0)
# Past the client timeout the matrix's adapters are built with (outbound.client(timeout=1.0)).
HANG_SECONDS = 1.5

FAULTS: dict[str, Callable[[Faults, str], object]] = {
    "502 after commit": lambda faults, path: faults.fail_after_commit(path, at=2),
    "connection dropped after commit": lambda faults, path: faults.drop_after_commit(path, at=2),
    "timeout after commit": lambda faults, path: faults.hang_after_commit(path, at=2),
    "throttled mid-push": lambda faults, path: faults.throttle(path, method="POST", at=2, times=2),
}


def outgoing(count: int = COUNT) -> list[OutgoingProduct]:
    """`count` new products, with what every platform requires (SKU, EAN, name, price)."""
    return [
        OutgoingProduct(uuid.uuid4(), f"SKU-{i:04}", f"{3760000000000 + i}", f"Produit {i}",
                        description=f"Description {i}", brand="Pixee", price=10.0 + i, stock=i,
                        weight=0.5)
        for i in range(count)
    ]  # fmt: skip


async def push_chunks(
    adapter: PlatformAdapter, products: Sequence[OutgoingProduct], *, uncertain: bool = False
) -> list[ItemOutcome]:
    """Push `products` in the adapter's chunks as the sync job does, each chunk carrying
    the links recorded so far; answers every product's outcome, in order."""
    links: dict[uuid.UUID, str] = {}
    outcomes: list[ItemOutcome] = []

    async def remember(ids: dict[uuid.UUID, str]) -> None:
        links.update(ids)

    for start in range(0, len(products), adapter.chunk_size):
        chunk = [replace(p, external_id=links.get(p.product_id))
                 for p in products[start : start + adapter.chunk_size]]  # fmt: skip
        done = await push_products_once(SETTINGS, adapter, chunk, remember, uncertain=uncertain)
        links.update({o.product_id: o.external_id for o in done if o.external_id})
        outcomes += done
    return outcomes


async def push_all(
    adapter: PlatformAdapter, products: Sequence[OutgoingProduct], *, uncertain: bool = False
) -> dict[uuid.UUID, str]:
    """`push_chunks`, asserting that every product ends ok; answers their external ids."""
    outcomes = await push_chunks(adapter, products, uncertain=uncertain)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    return {o.product_id: o.external_id for o in outcomes if o.external_id}
