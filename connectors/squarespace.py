"""Squarespace, through the Commerce APIs v1.0 (Products, Inventory, Authorization).

Checked against Squarespace's Commerce APIs documentation (developers.squarespace.com:
Authorization, Inventory, rate limits). The Products API paths used for writes
(create, update of a product and of its variants) could NOT be confirmed against the
public reference as it stands; they follow its published read paths and naming and
are the least certain part of this adapter.

- Auth: the site's API key as a bearer token; Squarespace also requires a User-Agent.
- Test: `GET /1.0/authorization/website` (the site title).
- Products: the Products API has no batch endpoint, so one call per product, a few at a
  time. Unlinked: `POST /1.0/commerce/products` (a PHYSICAL product on the store page
  given as option `store_page_id`, one variant: SKU, base price, weight, stock). Linked
  (external id "product:variant"): `POST /1.0/commerce/products/{id}` then
  `POST /1.0/commerce/products/{id}/variants/{variantId}`. Squarespace has no GTIN
  field: the EAN is not sent.
- Pull: `GET /1.0/commerce/products`, following `pagination.nextPageCursor`; one remote
  product per variant.
- Stock: `POST /1.0/commerce/inventory/adjustments` with `setFiniteOperations`, at most
  50 operations per call, with the Idempotency-Key the endpoint requires: a new one per
  call, since setting an absolute quantity twice is harmless, whereas a key derived
  from the levels would make Squarespace replay its old answer when the same quantity
  is pushed again after the stock changed in between.
- Prices: the variant's `pricing.basePrice` (no batch endpoint: one call per variant).
- Rate limits: a 429 blocks the key for a minute; Retry-After when sent, else 60 s.
  Requests are paced under the documented 300 a minute per key.
- Exactly once: a create's answer is noted as it arrives; after a lost one the
  products are found by SKU in the product listing (the API has no SKU filter), and
  only the missing ones are created. Updates set absolute values and are repeated
  safely.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from connectors.base import (
    ConnectorConfig,
    ItemOutcome,
    OutgoingProduct,
    PlatformAdapter,
    PriceLevel,
    RemoteProduct,
    StockLevel,
    register,
)
from connectors.external_ids import pair_id, split_pair
from connectors.http import PlatformHttp, Rate
from connectors.item_calls import Addressed, default_wait, each_concurrently, for_variants

API = "/1.0/commerce"
CONCURRENCY = 4
ADJUSTMENTS_PER_CALL = 50
BLOCKED_SECONDS = 60.0


def money(value: float, currency: str) -> dict[str, str]:
    return {"currency": currency, "value": f"{value:.2f}"}


@register
class SquarespaceAdapter(PlatformAdapter):
    platform = "squarespace"
    pace = Rate(per_second=5, burst=5)

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or "https://api.squarespace.com").rstrip("/")

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {
            "Authorization": f"Bearer {self.config.credentials['api_key']}",
            "User-Agent": "Pixee-PIM",
            **kwargs.pop("headers", {}),
        }
        with default_wait(BLOCKED_SECONDS):
            response = await self.http.request(method, self.base + path, headers=headers, **kwargs)
        return response.json() if response.content else None

    async def test(self) -> str:
        site = await self._request("GET", "/1.0/authorization/website")
        return str(site.get("siteTitle") or site.get("url") or site["id"])

    def _variant(self, product: OutgoingProduct) -> dict[str, Any]:
        variant: dict[str, Any] = {"sku": product.sku}
        if product.price is not None:
            variant["pricing"] = {"basePrice": money(product.price, self.config.currency)}
        if product.weight is not None:
            variant["shippingMeasurements"] = {
                "weight": {"unit": "KILOGRAM", "value": product.weight}
            }
        return variant

    async def _push_one(self, product: OutgoingProduct) -> str:
        fields = {
            "name": product.name,
            "description": product.description or "",
            "isVisible": product.is_active,
        }
        if product.external_id:
            product_id, variant_id = split_pair(product.external_id)
            await self._request(
                "POST", f"{API}/products/{product_id}", json=fields, idempotent=True
            )
            if variant_id:
                await self._request(
                    "POST", f"{API}/products/{product_id}/variants/{variant_id}",
                    json=self._variant(product), idempotent=True,
                )  # fmt: skip
            return product.external_id
        variant = self._variant(product)
        variant["stock"] = {"quantity": product.stock or 0, "unlimited": False}
        created = await self._request(
            "POST", f"{API}/products",
            json={"type": "PHYSICAL", "storePageId": self.config.options["store_page_id"],
                  **fields, "variants": [variant]},
        )  # fmt: skip
        external_id = pair_id(created["id"], created["variants"][0]["id"])
        self.note_created(product.product_id, external_id)
        return external_id

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        return await each_concurrently(products, self._push_one, limit=CONCURRENCY)

    async def find_existing(self, products: Sequence[OutgoingProduct]) -> dict[uuid.UUID, str]:
        wanted = {p.sku: p.product_id for p in products}
        found: dict[uuid.UUID, str] = {}
        async for page in self.pull_products():
            for remote in page:
                if remote.sku in wanted:
                    found[wanted[remote.sku]] = remote.external_id
            if len(found) == len(wanted):
                break
        return found

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        cursor: str | None = None
        while True:
            body = await self._request(
                "GET", f"{API}/products", params={"cursor": cursor} if cursor else None
            )
            yield [
                RemoteProduct(
                    external_id=pair_id(product["id"], variant["id"]),
                    sku=variant.get("sku"),
                    name=product.get("name"),
                    description=product.get("description"),
                    price=_amount(variant.get("pricing", {}).get("basePrice")),
                    stock=variant.get("stock", {}).get("quantity"),
                    weight=variant.get("shippingMeasurements", {}).get("weight", {}).get("value"),
                    is_active=product.get("isVisible"),
                )
                for product in body.get("products", [])
                for variant in product.get("variants", [])
            ]
            pagination = body.get("pagination") or {}
            cursor = pagination.get("nextPageCursor")
            if not pagination.get("hasNextPage") or not cursor:
                return

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        return await for_variants(levels, self._adjust)

    async def _adjust(self, levels: list[Addressed[StockLevel]]) -> list[ItemOutcome]:
        for start in range(0, len(levels), ADJUSTMENTS_PER_CALL):
            batch = levels[start : start + ADJUSTMENTS_PER_CALL]
            operations = [{"variantId": v, "quantity": level.quantity} for level, _, v in batch]
            await self._request(
                "POST", f"{API}/inventory/adjustments",
                json={"setFiniteOperations": operations},
                headers={"Idempotency-Key": str(uuid.uuid4())}, idempotent=True,
            )  # fmt: skip
        return [
            ItemOutcome(lv.product_id, ok=True, external_id=lv.external_id) for lv, _, _ in levels
        ]

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        async def one(price: PriceLevel) -> str | None:
            product_id, variant_id = split_pair(price.external_id or "")
            await self._request(
                "POST", f"{API}/products/{product_id}/variants/{variant_id}",
                json={"pricing": {"basePrice": money(price.price, price.currency)}},
                idempotent=True,
            )  # fmt: skip
            return price.external_id

        async def send(addressed: list[Addressed[PriceLevel]]) -> list[ItemOutcome]:
            return await each_concurrently([a[0] for a in addressed], one, limit=CONCURRENCY)

        return await for_variants(prices, send)


def _amount(money_value: dict[str, Any] | None) -> float | None:
    return float(money_value["value"]) if money_value and money_value.get("value") else None
