"""Shopware 6, through the Admin API (6.5 and later).

Checked against Shopware's Admin API documentation (shopware.stoplight.io and
developer.shopware.com: OAuth client credentials, the sync API, search criteria).

- Auth: an integration's access key and secret exchanged at `POST /api/oauth/token`
  (grant `client_credentials`) for a bearer token of about ten minutes, renewed a
  minute before it expires and once after a 401 (Shopware's answer to an expired one).
- Test: `GET /api/_info/version`.
- Products, stock and prices: one `POST /api/_action/sync` per chunk, an `upsert` of
  `product` entities. The Shopware id is the link when there is one, else our product
  id (32 hex digits, a valid Shopware id), so a retried chunk updates what the first
  attempt created: a sync whose answer was lost is sent again at once. productNumber =
  SKU, `ean`, translated `name`/`description`, `stock`, `active`, `weight`, `taxId`
  (option `tax_id`), `price` as the price array (gross, and net from option
  `tax_rate`, percent, for the currency of option `currency_id`, the system default
  currency unless given). Stock sends `stock` only; prices `price` only. The brand is
  not sent: manufacturers are entities of their own in Shopware.
- A sync runs in one transaction: when Shopware refuses some rows (400, each error's
  `source.pointer` is `/{operation}/{index}/{field}`), nothing was written; those rows
  fail and the others are sent again once.
- Pull: `POST /api/search/product` with `page`/`limit` and `total-count-mode` 1, until
  `total`.
- Rate limits: Shopware answers 429 with Retry-After.
"""

import json
import re
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
from connectors.http import PlatformError, PlatformHttp
from connectors.tokens import CachedToken, bearer

PAGE_SIZE = 100
OPERATION = "pim-products"
DEFAULT_CURRENCY_ID = "b7d2554b0ce847cd82f3ac9bd1c0dfca"  # Shopware's Defaults::CURRENCY
POINTER = re.compile(rf"^/{OPERATION}/(\d+)(/|$)")


@register
class ShopwareAdapter(PlatformAdapter):
    platform = "shopware"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or "").rstrip("/")
        self.token = CachedToken(self._fetch_token)
        self.currency_id = config.options.get("currency_id", DEFAULT_CURRENCY_ID)
        self.tax_rate = float(config.options.get("tax_rate", 20))

    async def _fetch_token(self) -> tuple[str, float]:
        response = await self.http.request(
            "POST", f"{self.base}/api/oauth/token",
            json={"grant_type": "client_credentials",
                  "client_id": self.config.credentials["client_id"],
                  "client_secret": self.config.credentials["client_secret"]},
            idempotent=True,  # a token request creates nothing: sent again after a 5xx
        )  # fmt: skip
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in", 600))

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        response = await self.http.request(
            method, self.base + path, headers=headers, auth=bearer(self.token), **kwargs
        )
        return response.json() if response.content else None

    async def test(self) -> str:
        return f"Shopware {(await self._request('GET', '/api/_info/version'))['version']}"

    @staticmethod
    def shopware_id(item: Any) -> str:
        return str(item.external_id or item.product_id.hex)

    def _price(self, gross: float) -> list[dict[str, Any]]:
        net = round(gross / (1 + self.tax_rate / 100), 4)
        return [{"currencyId": self.currency_id, "gross": gross, "net": net, "linked": True}]

    async def _sync(self, items: Sequence[Any], rows: list[dict[str, Any]]) -> list[ItemOutcome]:
        """Upsert `rows` (one per item); one outcome per item."""
        errors: dict[int, str] = {}
        pending = list(range(len(items)))
        for _attempt in range(2):
            if not pending:
                break
            payload = [rows[i] for i in pending]
            try:
                await self._request(
                    "POST", "/api/_action/sync",
                    json={OPERATION: {"entity": "product", "action": "upsert", "payload": payload}},
                    headers={"indexing-behavior": "use-queue-indexing"}, idempotent=True,
                )  # fmt: skip
            except PlatformError as exc:
                if exc.transient or exc.status != 400:
                    raise
                refused = self._refused(exc, len(payload))
                for position, message in refused.items():
                    errors[pending[position]] = message
                pending = [
                    index for position, index in enumerate(pending) if position not in refused
                ]
                continue
            break
        else:
            # Refused twice: what remains was not written.
            for index in pending:
                errors.setdefault(index, "refusé par Shopware")
        return [
            ItemOutcome(item.product_id, ok=False, error=errors[n])
            if n in errors
            else ItemOutcome(item.product_id, ok=True, external_id=rows[n]["id"])
            for n, item in enumerate(items)
        ]

    @staticmethod
    def _refused(exc: PlatformError, count: int) -> dict[int, str]:
        """Rows a 400 of the sync endpoint names (all of them when it names none)."""
        try:
            errors = json.loads(exc.body or "").get("errors", [])
        except (ValueError, AttributeError):
            errors = []
        refused: dict[int, str] = {}
        for error in errors:
            match = POINTER.match((error.get("source") or {}).get("pointer", ""))
            detail = str(error.get("detail") or error.get("title") or "refusé")
            if match and int(match.group(1)) < count:
                refused.setdefault(int(match.group(1)), detail)
        return refused or dict.fromkeys(range(count), exc.message)

    def _row(self, product: OutgoingProduct) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.shopware_id(product),
            "productNumber": product.sku,
            "name": product.name,
            "description": product.description,
            "active": product.is_active,
            "taxId": self.config.options["tax_id"],
            "stock": product.stock or 0,
        }
        if product.ean:
            row["ean"] = product.ean
        if product.price is not None:
            row["price"] = self._price(product.price)
        if product.weight is not None:
            row["weight"] = product.weight
        return row

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        return await self._sync(products, [self._row(p) for p in products])

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page = 1
        while True:
            body = await self._request(
                "POST", "/api/search/product",
                json={"page": page, "limit": PAGE_SIZE, "total-count-mode": 1},
            )  # fmt: skip
            data = body.get("data", [])
            yield [self._remote(product) for product in data]
            if not data or page * PAGE_SIZE >= int(body.get("total", 0)):
                return
            page += 1

    def _remote(self, product: dict[str, Any]) -> RemoteProduct:
        translated = product.get("translated") or {}
        prices = [p for p in product.get("price") or [] if p.get("currencyId") == self.currency_id]
        return RemoteProduct(
            external_id=product["id"],
            sku=product.get("productNumber"),
            ean=product.get("ean"),
            name=product.get("name") or translated.get("name"),
            description=product.get("description") or translated.get("description"),
            price=float(prices[0]["gross"]) if prices else None,
            stock=product.get("stock"),
            weight=product.get("weight"),
            is_active=product.get("active"),
        )

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        rows = [{"id": self.shopware_id(lv), "stock": lv.quantity} for lv in levels]
        return await self._sync(levels, rows)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        rows = [{"id": self.shopware_id(p), "price": self._price(p.price)} for p in prices]
        return await self._sync(prices, rows)
