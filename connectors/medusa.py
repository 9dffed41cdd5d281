"""Medusa, through the Admin API of Medusa v2.

Checked against Medusa's v2 Admin API reference (docs.medusajs.com/api/admin: auth,
stores, products and product batch, inventory items and location levels).

- Auth: a secret API key (credential `api_key`, sent as Basic with the key as user
  name and no password), a JWT (`token`, bearer), or an admin's `email`/`password`
  exchanged at `POST /auth/user/emailpass` for a JWT.
- Test: `GET /admin/stores` (the store name).
- Products: `POST /admin/products/batch` with `create` (new products: one option, one
  variant with SKU, EAN, weight and price) and `update` (linked products, external id
  "product:variant", the variant updated in place). A batch runs as one workflow and is
  refused as a whole, so on a refusal (4xx) the chunk's products are sent one by one
  (`POST /admin/products`, `POST /admin/products/{id}`) to tell which ones are wrong.
- Pull: `GET /admin/products` with `limit`/`offset` until `count`; one remote product
  per variant.
- Stock: the variants' inventory items are looked up by SKU (`GET
  /admin/inventory-items?sku=…`), then their level at the location of option
  `location_id` is set in one `POST /admin/inventory-items/location-levels/batch`.
- Prices: `POST /admin/products/{id}/variants/batch` with the variants' `prices`
  (amounts in major units, as Medusa v2 stores them). Medusa has no batch across
  products for variants, so one call per product, a few at a time.
- Rate limits are not part of Medusa; a 429 (Retry-After) from its proxy is transient.
- Exactly once: a new product's handle (unique in Medusa) is derived from its SKU;
  after a lost answer to a batch with creates, the products are found by handle
  (`GET /admin/products?handle=…`) and only the missing ones are created again.
  Updates set values and are repeated safely.
"""

import base64
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
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
from connectors.external_ids import handle_for, pair_id, split_pair
from connectors.http import PlatformError, PlatformHttp
from connectors.item_calls import Addressed, each_concurrently, for_variants, run_bounded
from connectors.tokens import CachedToken, bearer, jwt_lifetime

PAGE_SIZE = 100
CONCURRENCY = 4
OPTION = "Default"
JWT_LIFETIME = 3600.0  # Medusa's default, when the JWT has no `exp`


@register
class MedusaAdapter(PlatformAdapter):
    platform = "medusa"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or "").rstrip("/")
        self.jwt = bearer(CachedToken(self._login))

    async def _login(self) -> tuple[str, float]:
        credentials = self.config.credentials
        response = await self.http.request(
            "POST", f"{self.base}/auth/user/emailpass",
            json={"email": credentials["email"], "password": credentials["password"]},
            idempotent=True,
        )  # fmt: skip
        token = str(response.json()["token"])
        return token, jwt_lifetime(token, JWT_LIFETIME)

    async def _authorization(self, refused: Mapping[str, str] | None) -> Mapping[str, str]:
        credentials = self.config.credentials
        if "api_key" in credentials:
            key = base64.b64encode(f"{credentials['api_key']}:".encode()).decode()
            return {"Authorization": f"Basic {key}"}
        if token := credentials.get("token"):
            return {"Authorization": f"Bearer {token}"}
        return await self.jwt(refused)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(
            method, self.base + path, auth=self._authorization, **kwargs
        )
        return response.json()

    async def test(self) -> str:
        stores = (await self._request("GET", "/admin/stores"))["stores"]
        return str(stores[0]["name"]) if stores else "Medusa"

    def _fields(self, product: OutgoingProduct) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "title": product.name,
            "description": product.description,
            "subtitle": product.short_description,
            "status": "published" if product.is_active else "draft",
            "weight": product.weight,
            "metadata": {"brand": product.brand} if product.brand else None,
        }
        return {key: value for key, value in fields.items() if value is not None}

    def _variant(self, product: OutgoingProduct) -> dict[str, Any]:
        variant: dict[str, Any] = {"title": product.name, "sku": product.sku, "ean": product.ean,
                                   "weight": product.weight}  # fmt: skip
        if product.price is not None:
            variant["prices"] = [
                {"currency_code": self.config.currency.lower(), "amount": product.price}
            ]
        return {key: value for key, value in variant.items() if value is not None}

    def _create(self, product: OutgoingProduct) -> dict[str, Any]:
        body = {**self._fields(product), "handle": handle_for(product.sku),
                "options": [{"title": OPTION, "values": [OPTION]}]}  # fmt: skip
        body["variants"] = [{**self._variant(product), "manage_inventory": True,
                             "options": {OPTION: OPTION}}]  # fmt: skip
        if channel := self.config.options.get("sales_channel_id"):
            body["sales_channels"] = [{"id": channel}]
        return body

    def _update(self, product: OutgoingProduct) -> dict[str, Any]:
        product_id, variant_id = split_pair(product.external_id or "")
        body = {"id": product_id, **self._fields(product)}
        if variant_id:
            body["variants"] = [{"id": variant_id, **self._variant(product)}]
        return body

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        new = [p for p in products if not p.external_id]
        linked = [p for p in products if p.external_id]
        try:
            result = await self._request(
                "POST", "/admin/products/batch",
                json={"create": [self._create(p) for p in new],
                      "update": [self._update(p) for p in linked], "delete": []},
                idempotent=not new,
            )  # fmt: skip
        except PlatformError as exc:
            # Only the workflow's refusal of the batch (invalid data, a handle taken:
            # 4xx) is worth splitting; a redirect to another host or a refused token is not.
            status = exc.status or 0
            if exc.transient or not 400 <= status < 500 or status in (401, 403):
                raise
            # The workflow refused the whole batch: find the culprits one by one.
            return await each_concurrently(products, self._push_one, limit=CONCURRENCY)
        ids = {_sku(p): _linked_id(p) for p in [*result["created"], *result["updated"]]}
        return [
            ItemOutcome(p.product_id, ok=True, external_id=ids[p.sku])
            if p.sku in ids
            else ItemOutcome(p.product_id, ok=False, error="absent de la réponse Medusa")
            for p in products
        ]

    async def _push_one(self, product: OutgoingProduct) -> str:
        if product.external_id:
            body = self._update(product)
            path = f"/admin/products/{body.pop('id')}"
        else:
            created = await self._request(
                "POST", "/admin/products", json=self._create(product), idempotent=False
            )
            external_id = _linked_id(created["product"])
            self.note_created(product.product_id, external_id)
            return external_id
        updated = await self._request("POST", path, json=body, idempotent=True)
        return _linked_id(updated["product"])

    async def find_existing(self, products: Sequence[OutgoingProduct]) -> dict[Any, str]:
        wanted = {handle_for(p.sku): p.product_id for p in products}
        handles = list(wanted)
        found: dict[Any, str] = {}
        for start in range(0, len(handles), PAGE_SIZE):
            batch = handles[start : start + PAGE_SIZE]
            body = await self._request(
                "GET", "/admin/products",
                params={"handle": batch, "limit": PAGE_SIZE, "fields": "id,handle,*variants"},
            )  # fmt: skip
            for product in body.get("products", []):
                if product.get("handle") in wanted:
                    found[wanted[product["handle"]]] = _linked_id(product)
        return found

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        offset = 0
        while True:
            body = await self._request(
                "GET", "/admin/products",
                params={"limit": PAGE_SIZE, "offset": offset,
                        "fields": "*variants,*variants.prices,+variants.inventory_quantity"},
            )  # fmt: skip
            items = body.get("products", [])
            yield [_remote(product, variant, self.config.currency.lower())
                   for product in items for variant in product.get("variants") or []]  # fmt: skip
            offset += len(items)
            if not items or offset >= int(body.get("count", 0)):
                return

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        location = self.config.options["location_id"]
        found = await self._request(
            "GET", "/admin/inventory-items",
            params={"sku": [level.sku for level in levels], "limit": len(levels),
                    "fields": "id,sku,*location_levels"},
        )  # fmt: skip
        items = {item["sku"]: item for item in found.get("inventory_items", [])}
        create: list[dict[str, Any]] = []
        update: list[dict[str, Any]] = []
        outcomes = []
        for level in levels:
            item = items.get(level.sku)
            if item is None:
                error = f"aucun article de stock Medusa pour {level.sku}"
                outcomes.append(ItemOutcome(level.product_id, ok=False, error=error))
                continue
            change = {"inventory_item_id": item["id"], "location_id": location,
                      "stocked_quantity": level.quantity}  # fmt: skip
            stocked_here = any(
                lv["location_id"] == location for lv in item.get("location_levels") or []
            )
            (update if stocked_here else create).append(change)
            outcomes.append(ItemOutcome(level.product_id, ok=True, external_id=level.external_id))
        if create or update:
            await self._request(
                "POST", "/admin/inventory-items/location-levels/batch",
                json={"create": create, "update": update, "delete": []},
            )  # fmt: skip
        return outcomes

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        return await for_variants(prices, self._send_prices)

    async def _send_prices(self, linked: list[Addressed[PriceLevel]]) -> list[ItemOutcome]:
        by_product: dict[str, list[tuple[str, PriceLevel]]] = defaultdict(list)
        for price, product_id, variant_id in linked:
            by_product[product_id].append((variant_id, price))

        async def send(product_id: str, variants: list[tuple[str, PriceLevel]]) -> None:
            update = [{"id": variant_id, "prices": [{"currency_code": p.currency.lower(),
                                                     "amount": p.price}]}
                      for variant_id, p in variants]  # fmt: skip
            await self._request(
                "POST", f"/admin/products/{product_id}/variants/batch", json={"update": update}
            )

        results = await run_bounded(
            [partial(send, pid, variants) for pid, variants in by_product.items()],
            limit=CONCURRENCY,
        )
        refused = {pid: r.message for pid, r in zip(by_product, results, strict=True)
                   if isinstance(r, PlatformError)}  # fmt: skip
        return [
            ItemOutcome(price.product_id, ok=False, error=refused[product_id])
            if product_id in refused
            else ItemOutcome(price.product_id, ok=True, external_id=price.external_id)
            for price, product_id, _ in linked
        ]


def _sku(product: dict[str, Any]) -> str | None:
    variants = product.get("variants") or []
    return variants[0].get("sku") if variants else None


def _linked_id(product: dict[str, Any]) -> str:
    variants = product.get("variants") or []
    return pair_id(product["id"], variants[0]["id"]) if variants else product["id"]


def _remote(product: dict[str, Any], variant: dict[str, Any], currency: str) -> RemoteProduct:
    prices = [p for p in variant.get("prices") or [] if p.get("currency_code") == currency]
    return RemoteProduct(
        external_id=pair_id(product["id"], variant["id"]),
        sku=variant.get("sku"),
        ean=variant.get("ean") or variant.get("barcode"),
        name=product.get("title"),
        description=product.get("description"),
        price=float(prices[0]["amount"]) if prices else None,
        stock=variant.get("inventory_quantity"),
        weight=variant.get("weight") or product.get("weight"),
        is_active=product.get("status") == "published",
    )
