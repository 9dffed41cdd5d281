"""Magento 2 (Adobe Commerce) REST API: a bearer token, products addressed by SKU,
asynchronous bulk endpoint for product writes, searchCriteria pagination, inventory
source items (MSI) for stock and base-prices for prices.

Checked against Adobe's Web API documentation (developer.adobe.com/commerce/webapi:
"Bulk endpoints", "Bulk operation status endpoints", "Token-based authentication", the
products, inventory source-items and base-prices references).

- Auth: an integration's access token (credential `access_token`; it does not expire,
  and since 2.4.4 the store must allow integration tokens as standalone bearers), or
  an admin user's `username`/`password` exchanged at `POST /V1/integration/admin/token`
  for a token that expires (4 hours by default, `oauth/access_token_lifetime/admin`):
  it is renewed before then, and once after a 401.

- Store views: with option `store_code` the routes are `/rest/<store>/V1/...` and, for
  bulk, `/rest/<store>/async/bulk/V1/...` (the store code comes before `/async/bulk`).
- A bulk request only queues its operations: "accepted" is not a success. The adapter
  polls `GET /V1/bulk/{uuid}/status` until no operation is open (status 4), within the
  connector's wait, and records each operation's own outcome: 1 complete, 2 failed but
  retriable (transient), 3 failed, 5 rejected. Operations still open when the wait ends
  are transient: saving a product by SKU again is an update, so a later run converges.
"""

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

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
from connectors.http import PlatformError, PlatformHttp
from connectors.reports import poll_within
from connectors.tokens import CachedToken, bearer, jwt_lifetime

PAGE_SIZE = 100
ENABLED, DISABLED = 1, 2
VISIBLE_EVERYWHERE = 4
# Bulk operation statuses (GET /V1/bulk/{uuid}/status).
COMPLETE, RETRIABLY_FAILED, FAILED, OPEN, REJECTED = 1, 2, 3, 4, 5
STILL_QUEUED = "toujours en file d'attente chez Magento (consommateurs arrêtés ?)"
ADMIN_TOKEN_LIFETIME = 4 * 3600.0  # Magento's default, when the token has no `exp`


def _attribute(item: dict[str, Any], code: str) -> Any:
    for attribute in item.get("custom_attributes") or []:
        if attribute.get("attribute_code") == code:
            return attribute.get("value")
    return None


@register
class MagentoAdapter(PlatformAdapter):
    platform = "magento"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.admin_token = bearer(CachedToken(self._admin_login))

    async def _admin_login(self) -> tuple[str, float]:
        credentials = self.config.credentials
        response = await self.http.request(
            "POST", self._url("integration/admin/token"),
            json={"username": credentials["username"], "password": credentials["password"]},
            idempotent=True,
        )  # fmt: skip
        token = str(response.json())  # Magento answers the token as a JSON string
        return token, jwt_lifetime(token, ADMIN_TOKEN_LIFETIME)

    @property
    def _ean_attribute(self) -> str:
        return str(self.config.options.get("ean_attribute", "ean"))

    def _url(self, path: str, *, asynchronous: bool = False) -> str:
        if not self.config.base_url:
            raise PlatformError("Magento : base_url (adresse de la boutique) manquante")
        store = self.config.options.get("store_code")
        scope = f"/{store}" if store else ""
        bulk = "/async/bulk" if asynchronous else ""
        return f"{self.config.base_url.rstrip('/')}/rest{scope}{bulk}/V1/{path}"

    async def _call(
        self, method: str, path: str, *, asynchronous: bool = False, **kwargs: Any
    ) -> httpx.Response:
        url = self._url(path, asynchronous=asynchronous)
        # An empty token is no token: the admin login, or the key it lacks, is named.
        if token := self.config.credentials.get("access_token"):
            return await self.http.request(
                method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        return await self.http.request(method, url, auth=self.admin_token, **kwargs)

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
        # One asynchronous bulk request per chunk; Magento answers per item, in order,
        # whether it queued it; what became of it is the bulk's status to tell.
        answer = (
            await self._call(
                "POST", "products", asynchronous=True, json=[self._body(p) for p in products]
            )
        ).json()
        items = {int(item["id"]): item for item in answer.get("request_items", [])}
        accepted = [i for i in range(len(products)) if items.get(i, {}).get("status") == "accepted"]
        operations = (
            await self._operations(str(answer.get("bulk_uuid")), accepted) if accepted else {}
        )
        outcomes = []
        for index, p in enumerate(products):
            if index in operations:
                outcomes.append(_operation_outcome(p, operations[index]))
            elif index in accepted:
                outcomes.append(ItemOutcome(p.product_id, ok=False, transient=True,
                                            error="absent du statut du lot Magento"))  # fmt: skip
            else:
                item = items.get(index, {})
                message = item.get("error_message") or f"refusé ({item.get('status', 'absent')})"
                outcomes.append(ItemOutcome(p.product_id, ok=False, error=str(message)))
        return outcomes

    async def _operations(self, bulk_uuid: str, accepted: list[int]) -> dict[int, dict[str, Any]]:
        """The bulk's operations by the index of their request item, once none is open
        (or the wait is over)."""

        async def fetch() -> list[dict[str, Any]]:
            status = (await self._call("GET", f"bulk/{bulk_uuid}/status")).json()
            return list(status.get("operations_list") or [])

        operations = await poll_within(
            self.config, fetch, lambda ops: all(op.get("status") != OPEN for op in ops)
        )
        by_id = {int(op["id"]): op for op in operations}
        if set(accepted) <= set(by_id):
            return by_id
        # Magento before 2.4 numbers operations globally; they come in request order.
        return dict(zip(accepted, operations, strict=False))

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


def _operation_outcome(product: OutgoingProduct, operation: dict[str, Any]) -> ItemOutcome:
    status = operation.get("status")
    if status == COMPLETE:
        return ItemOutcome(product.product_id, ok=True, external_id=product.sku)
    if status == OPEN:
        return ItemOutcome(product.product_id, ok=False, transient=True, error=STILL_QUEUED)
    message = str(operation.get("result_message") or f"échec de l'opération ({status})")
    return ItemOutcome(
        product.product_id, ok=False, error=message, transient=status == RETRIABLY_FAILED
    )
