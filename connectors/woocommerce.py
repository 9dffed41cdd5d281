"""WooCommerce REST API v3 (/wp-json/wc/v3): consumer key and secret as HTTP Basic auth,
products/batch for writes (at most 100 items), X-WP-TotalPages for pagination.

Checked against the WooCommerce REST API v3 documentation (woocommerce.github.io/
woocommerce-rest-api-docs: authentication over HTTPS, products, batch, pagination).

A batch with creates is never sent again as such: when its answer is lost (a gateway
502 after PHP committed it), the products are looked up by SKU (`GET products?sku=`,
comma-separated) and only the missing ones are created. Batches of updates only set
absolute values and are repeated safely."""

import base64
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
from connectors.http import PlatformError

PER_PAGE = 100


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _in_order(items: Sequence[Any], outcomes: dict[Any, ItemOutcome]) -> list[ItemOutcome]:
    """One outcome per item, in input order; an item the batch answer left out failed."""
    return [
        outcomes.get(i.product_id)
        or ItemOutcome(i.product_id, ok=False, error="absent de la réponse de la plateforme")
        for i in items
    ]


@register
class WooCommerceAdapter(PlatformAdapter):
    platform = "woocommerce"

    def _url(self, path: str) -> str:
        if not self.config.base_url:
            raise PlatformError("WooCommerce : base_url (adresse de la boutique) manquante")
        return f"{self.config.base_url.rstrip('/')}/wp-json/wc/v3/{path}"

    def _headers(self) -> dict[str, str]:
        creds = self.config.credentials
        pair = f"{creds.get('consumer_key', '')}:{creds.get('consumer_secret', '')}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, self._url(path), headers=self._headers(), **kwargs)

    async def test(self) -> str:
        status = (await self._call("GET", "system_status")).json()
        return str(status.get("environment", {}).get("site_url") or "")

    @staticmethod
    def _body(p: OutgoingProduct) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": p.name, "sku": p.sku, "description": p.description or "",
            "short_description": p.short_description or "",
            "status": "publish" if p.is_active else "draft",
            "manage_stock": p.stock is not None,
        }  # fmt: skip
        if p.ean:
            body["global_unique_id"] = p.ean  # GTIN/EAN field, WooCommerce 9.2+
        if p.price is not None:
            body["regular_price"] = f"{p.price:.2f}"
        if p.stock is not None:
            body["stock_quantity"] = p.stock
        if p.weight is not None:
            body["weight"] = str(p.weight)
        return body

    async def _batch(self, create: list[Any], update: list[Any]) -> dict[str, list[Any]]:
        payload = {k: v for k, v in (("create", create), ("update", update)) if v}
        answer: dict[str, list[Any]] = (
            await self._call("POST", "products/batch", json=payload, idempotent=not create)
        ).json()
        return answer

    async def find_existing(self, products: Sequence[OutgoingProduct]) -> dict[Any, str]:
        by_sku = {p.sku: p.product_id for p in products}
        found: dict[Any, str] = {}
        skus = list(by_sku)
        for start in range(0, len(skus), PER_PAGE):
            batch = skus[start : start + PER_PAGE]
            response = await self._call(
                "GET", "products", params={"sku": ",".join(batch), "per_page": PER_PAGE}
            )
            for item in response.json():
                if item.get("sku") in by_sku:
                    found[by_sku[item["sku"]]] = str(item["id"])
        return found

    @staticmethod
    def _outcome(product_id: Any, item: dict[str, Any]) -> ItemOutcome:
        error = item.get("error")
        if error:
            return ItemOutcome(product_id, ok=False, error=str(error.get("message") or error))
        return ItemOutcome(product_id, ok=True, external_id=str(item["id"]))

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        creates = [p for p in products if not p.external_id]
        updates = [p for p in products if p.external_id]
        answer = await self._batch(
            [self._body(p) for p in creates],
            [{"id": int(p.external_id or 0), **self._body(p)} for p in updates],
        )
        done = {
            p.product_id: self._outcome(p.product_id, item)
            for key, group in (("create", creates), ("update", updates))
            for p, item in zip(group, answer.get(key, []), strict=False)
        }
        return _in_order(products, done)

    async def _update_linked(
        self, items: Sequence[StockLevel] | Sequence[PriceLevel], fields: Any
    ) -> list[ItemOutcome]:
        linked, outcomes = split_linked(items)
        if linked:
            answer = await self._batch(
                [], [{"id": int(i.external_id), **fields(i)} for i in linked]
            )
            for item, result in zip(linked, answer.get("update", []), strict=False):
                outcomes[item.product_id] = self._outcome(item.product_id, result)
        return _in_order(items, outcomes)

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        return await self._update_linked(
            levels, lambda s: {"manage_stock": True, "stock_quantity": s.quantity}
        )

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        return await self._update_linked(prices, lambda p: {"regular_price": f"{p.price:.2f}"})

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page = 1
        while True:
            response = await self._call(
                "GET", "products", params={"per_page": PER_PAGE, "page": page, "orderby": "id"}
            )
            yield [self._remote(item) for item in response.json()]
            if page >= int(response.headers.get("X-WP-TotalPages", "1")):
                return
            page += 1

    @staticmethod
    def _remote(item: dict[str, Any]) -> RemoteProduct:
        return RemoteProduct(
            external_id=str(item["id"]), sku=item.get("sku") or None,
            ean=item.get("global_unique_id") or None, name=item.get("name"),
            description=item.get("description") or None,
            price=_number(item.get("regular_price") or item.get("price")),
            stock=item.get("stock_quantity"), weight=_number(item.get("weight")),
            is_active=item.get("status") == "publish",
        )  # fmt: skip
