"""BigCommerce Catalog API v3: X-Auth-Token, /v3/catalog/products, batch updates (PUT with
at most 10 products), one POST per new product, meta.pagination, and the
X-Rate-Limit-Time-Reset-Ms header on 429.

Checked against BigCommerce's developer documentation (developer.bigcommerce.com: Catalog
API v3 products reference, API rate limits and the X-Rate-Limit-* headers).

Pacing: the store's window (150 requests per 30 s on Standard and Plus plans) is
followed through X-Rate-Limit-Requests-Left and X-Rate-Limit-Time-Reset-Ms on every
answer, so the window is not spent into a 429. Each product created is noted as its
answer arrives; after a lost answer, products are found by SKU (`sku:in`), SKUs
being unique per store."""

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from connectors.base import (
    ItemOutcome,
    OutgoingProduct,
    PlatformAdapter,
    PriceLevel,
    RemoteProduct,
    StockLevel,
    register,
    split_linked,
)
from connectors.http import Bucket, PlatformError, Rate

API = "https://api.bigcommerce.com/stores"
BATCH_LIMIT = 10  # products per PUT /v3/catalog/products
PAGE_SIZE = 250
RETRY_HEADERS = ("X-Rate-Limit-Time-Reset-Ms",)
SKUS_PER_LOOKUP = 50


def window_spent(response: httpx.Response, bucket: Bucket) -> None:
    """Hold requests back until the window resets, once the store says none is left."""
    left = response.headers.get("X-Rate-Limit-Requests-Left")
    reset = response.headers.get("X-Rate-Limit-Time-Reset-Ms")
    if left is None or reset is None or not left.isdigit() or int(left) > 1:
        return
    try:
        bucket.pause(max(0.0, float(reset) / 1000))
    except ValueError:
        return


@register
class BigCommerceAdapter(PlatformAdapter):
    platform = "bigcommerce"
    pace = Rate(per_second=5, burst=10)

    def _base(self) -> str:
        if self.config.base_url:
            return self.config.base_url.rstrip("/")
        store_hash = self.config.options.get("store_hash")
        if not store_hash:
            raise PlatformError("BigCommerce : store_hash (ou base_url) manquant")
        return f"{API}/{store_hash}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(
            method, f"{self._base()}/{path}", retry_headers=RETRY_HEADERS, signal=window_spent,
            headers={"X-Auth-Token": self.config.credentials.get("access_token", ""),
                     "Accept": "application/json"},
            **kwargs,
        )  # fmt: skip

    async def test(self) -> str:
        return str((await self._call("GET", "v2/store")).json().get("name", ""))

    @staticmethod
    def _body(p: OutgoingProduct) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": p.name, "sku": p.sku, "type": "physical", "weight": p.weight or 0,
            "price": p.price or 0, "description": p.description or "",
            "is_visible": p.is_active,
        }  # fmt: skip
        if p.ean:
            body["gtin"] = p.ean
        if p.brand:
            body["brand_name"] = p.brand
        if p.cost_price is not None:
            body["cost_price"] = p.cost_price
        if p.stock is not None:
            body["inventory_tracking"] = "product"
            body["inventory_level"] = p.stock
        return body

    async def _put_batches(self, rows: list[tuple[Any, dict[str, Any]]]) -> dict[Any, ItemOutcome]:
        """Batch updates of at most 10; a refused batch (422…) fails its own products only."""
        done: dict[Any, ItemOutcome] = {}
        for start in range(0, len(rows), BATCH_LIMIT):
            batch = rows[start : start + BATCH_LIMIT]
            try:
                await self._call("PUT", "v3/catalog/products", json=[body for _, body in batch])
            except PlatformError as exc:
                if exc.transient:
                    raise
                done.update(
                    {pid: ItemOutcome(pid, ok=False, error=exc.message) for pid, _ in batch}
                )
                continue
            done.update({pid: ItemOutcome(pid, ok=True, external_id=str(body["id"]))
                         for pid, body in batch})  # fmt: skip
        return done

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        done = await self._put_batches(
            [
                (p.product_id, {"id": int(p.external_id), **self._body(p)})
                for p in products
                if p.external_id
            ]
        )
        for p in products:
            if p.external_id:
                continue
            try:
                created = (
                    await self._call("POST", "v3/catalog/products", json=self._body(p))
                ).json()
            except PlatformError as exc:
                if exc.transient:
                    raise
                done[p.product_id] = ItemOutcome(p.product_id, ok=False, error=exc.message)
                continue
            external_id = str(created["data"]["id"])
            self.note_created(p.product_id, external_id)
            done[p.product_id] = ItemOutcome(p.product_id, ok=True, external_id=external_id)
        return [done[p.product_id] for p in products]

    async def find_existing(self, products: Sequence[OutgoingProduct]) -> dict[Any, str]:
        by_sku = {p.sku: p.product_id for p in products}
        skus = list(by_sku)
        found: dict[Any, str] = {}
        for start in range(0, len(skus), SKUS_PER_LOOKUP):
            batch = skus[start : start + SKUS_PER_LOOKUP]
            answer = (
                await self._call(
                    "GET",
                    "v3/catalog/products",
                    params={"sku:in": ",".join(batch), "limit": PAGE_SIZE},
                )
            ).json()
            for item in answer.get("data") or []:
                if item.get("sku") in by_sku:
                    found[by_sku[item["sku"]]] = str(item["id"])
        return found

    async def _update_linked(
        self, items: Sequence[StockLevel] | Sequence[PriceLevel], fields: Any
    ) -> list[ItemOutcome]:
        linked, outcomes = split_linked(items)
        outcomes.update(
            await self._put_batches(
                [(i.product_id, {"id": int(i.external_id), **fields(i)}) for i in linked]
            )
        )
        return [outcomes[i.product_id] for i in items]

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        return await self._update_linked(
            levels, lambda s: {"inventory_tracking": "product", "inventory_level": s.quantity}
        )

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        return await self._update_linked(prices, lambda p: {"price": p.price})

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page = 1
        while True:
            answer = (
                await self._call(
                    "GET",
                    "v3/catalog/products",
                    params={"limit": PAGE_SIZE, "page": page, "include": "variants"},
                )
            ).json()
            yield [self._remote(item) for item in answer.get("data") or []]
            pagination = (answer.get("meta") or {}).get("pagination") or {}
            if page >= int(pagination.get("total_pages") or 1):
                return
            page += 1

    @staticmethod
    def _remote(item: dict[str, Any]) -> RemoteProduct:
        return RemoteProduct(
            external_id=str(item["id"]), sku=item.get("sku") or None,
            ean=item.get("gtin") or item.get("upc") or None, name=item.get("name"),
            description=item.get("description") or None, price=item.get("price"),
            stock=item.get("inventory_level"), weight=item.get("weight"),
            is_active=item.get("is_visible"),
        )  # fmt: skip
