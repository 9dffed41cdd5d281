"""Magento 2 (Adobe Commerce) REST API: an integration's bearer token, products addressed
by SKU, asynchronous bulk endpoint for product writes, searchCriteria pagination,
inventory source items (MSI) for stock and base-prices for prices."""

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
)
from connectors.http import PlatformError

PAGE_SIZE = 100
ENABLED, DISABLED = 1, 2
VISIBLE_EVERYWHERE = 4


def _attribute(item: dict[str, Any], code: str) -> Any:
    for attribute in item.get("custom_attributes") or []:
        if attribute.get("attribute_code") == code:
            return attribute.get("value")
    return None


@register
class MagentoAdapter(PlatformAdapter):
    platform = "magento"

    @property
    def _ean_attribute(self) -> str:
        return str(self.config.options.get("ean_attribute", "ean"))

    def _url(self, path: str, *, asynchronous: bool = False) -> str:
        if not self.config.base_url:
            raise PlatformError("Magento : base_url (adresse de la boutique) manquante")
        store = self.config.options.get("store_code")
        scope = f"/{store}" if store else ""
        kind = "rest/async/bulk" if asynchronous else "rest"
        return f"{self.config.base_url.rstrip('/')}/{kind}{scope}/V1/{path}"

    async def _call(
        self, method: str, path: str, *, asynchronous: bool = False, **kwargs: Any
    ) -> httpx.Response:
        token = self.config.credentials.get("access_token", "")
        return await self.http.request(
            method, self._url(path, asynchronous=asynchronous),
            headers={"Authorization": f"Bearer {token}"}, **kwargs,
        )  # fmt: skip

    async def test(self) -> str:
        configs = (await self._call("GET", "store/storeConfigs")).json()
        return str(configs[0].get("base_url", "")) if configs else ""

    def _body(self, p: OutgoingProduct) -> dict[str, Any]:
        attributes = [
            {"attribute_code": "description", "value": p.description or ""},
            {"attribute_code": "short_description", "value": p.short_description or ""},
        ]
        if p.ean:
            attributes.append({"attribute_code": self._ean_attribute, "value": p.ean})
        product: dict[str, Any] = {
            "sku": p.sku, "name": p.name, "type_id": "simple",
            "attribute_set_id": int(self.config.options.get("attribute_set_id", 4)),
            "status": ENABLED if p.is_active else DISABLED, "visibility": VISIBLE_EVERYWHERE,
            "custom_attributes": attributes,
        }  # fmt: skip
        if p.price is not None:
            product["price"] = p.price
        if p.weight is not None:
            product["weight"] = p.weight
        if p.stock is not None:
            product["extension_attributes"] = {
                "stock_item": {"qty": p.stock, "is_in_stock": p.stock > 0}
            }
        return {"product": product}

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        # One asynchronous bulk request per chunk; Magento answers per item, in order.
        answer = (
            await self._call(
                "POST", "products", asynchronous=True, json=[self._body(p) for p in products]
            )
        ).json()
        items = {int(item["id"]): item for item in answer.get("request_items", [])}
        outcomes = []
        for index, p in enumerate(products):
            item = items.get(index, {})
            if item.get("status") == "accepted":
                outcomes.append(ItemOutcome(p.product_id, ok=True, external_id=p.sku))
            else:
                message = item.get("error_message") or f"refusé ({item.get('status', 'absent')})"
                outcomes.append(ItemOutcome(p.product_id, ok=False, error=str(message)))
        return outcomes

    @staticmethod
    def _failed_skus(answer: Any) -> dict[str, str]:
        """Magento lists what it refused as {message, parameters}; a parameter names the SKU."""
        failed: dict[str, str] = {}
        for error in answer or []:
            message = str(error.get("message", "refusé"))
            parameters = error.get("parameters") or []
            values = parameters.values() if isinstance(parameters, dict) else parameters
            for value in values:
                failed[str(value)] = message
        return failed

    @staticmethod
    def _by_sku(
        items: Sequence[StockLevel] | Sequence[PriceLevel], failed: dict[str, str]
    ) -> list[ItemOutcome]:
        return [
            ItemOutcome(
                i.product_id, ok=i.sku not in failed, external_id=i.sku, error=failed.get(i.sku)
            )
            for i in items
        ]

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        source = str(self.config.options.get("source_code", "default"))
        body = {
            "sourceItems": [
                {
                    "sku": s.sku,
                    "source_code": source,
                    "quantity": s.quantity,
                    "status": 1 if s.quantity > 0 else 0,
                }
                for s in levels
            ]
        }
        answer = (await self._call("POST", "inventory/source-items", json=body)).json()
        return self._by_sku(levels, self._failed_skus(answer))

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        store_id = int(self.config.options.get("store_id", 0))
        body = {"prices": [{"sku": p.sku, "price": p.price, "store_id": store_id} for p in prices]}
        answer = (await self._call("POST", "products/base-prices", json=body)).json()
        return self._by_sku(prices, self._failed_skus(answer))

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page = 1
        while True:
            params = {"searchCriteria[pageSize]": PAGE_SIZE, "searchCriteria[currentPage]": page}
            answer = (await self._call("GET", "products", params=params)).json()
            yield [self._remote(item) for item in answer.get("items") or []]
            # Past the last page Magento repeats the last one: stop on total_count.
            if page * PAGE_SIZE >= int(answer.get("total_count") or 0):
                return
            page += 1

    def _remote(self, item: dict[str, Any]) -> RemoteProduct:
        stock = (item.get("extension_attributes") or {}).get("stock_item") or {}
        qty = stock.get("qty")
        return RemoteProduct(
            external_id=str(item["sku"]), sku=item["sku"],
            ean=_attribute(item, self._ean_attribute),
            name=item.get("name"), description=_attribute(item, "description"),
            price=item.get("price"), weight=item.get("weight"),
            stock=int(qty) if qty is not None else None, is_active=item.get("status") == ENABLED,
        )  # fmt: skip
