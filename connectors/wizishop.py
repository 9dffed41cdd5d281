"""WiziShop, through its REST API v3 (`https://api.wizishop.com/v3`).

Checked against WiziShop's REST API v3 documentation (api.wizishop.com/v3 and its
client libraries) for login, product listing and SKU stock. The product and price
request bodies could NOT be confirmed against a public reference (see below).

- Auth: `POST /v3/auth/login` with the account's username and password answers a JWT
  (`token`) and the account's `default_shop_id`; the token is sent as a bearer token,
  renewed shortly before its `exp` and once after a 401.
  `options.shop_id` picks another shop of the account.
- Products: `GET /v3/shops/{shop}/products?limit=&page=` (also filtered by `sku`),
  `POST /v3/shops/{shop}/products` to create, `PUT /v3/shops/{shop}/products/{id}` to
  update. The API has no batch endpoint, so one product per call. Nothing documents
  a SKU as unique or a POST as matched to an existing product: each POST is taken to
  create a new one, so an unlinked product is first looked up by SKU (the exact SKU
  among the listing's results) and a retried chunk, after a create whose answer was
  lost, updates what it already created. A created id is noted the moment it is
  answered.
  The product carries one SKU entry (our SKU, EAN-13, price, stock, weight).
- Pull: pages of `limit` products (`results`), until a short page or `total`.
- Stock: `PUT /v3/shops/{shop}/skus/{sku}` with `{"method": "replace", "stock": n}`.
  Prices: the same SKU resource with the price only.
- The login, products listing and SKU stock calls are those of WiziShop's v3
  documentation and its client libraries; the product and price body fields follow
  the same naming, and are the part least confirmed.
- Throttling: 429 with Retry-After, transient through PlatformHttp.
"""

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
from connectors.http import PlatformHttp
from connectors.item_calls import each_item
from connectors.tokens import CachedToken, bearer, jwt_lifetime

API = "https://api.wizishop.com"
PAGE_SIZE = 100
JWT_LIFETIME = 3600.0  # when the JWT has no `exp`


@register
class WizishopAdapter(PlatformAdapter):
    platform = "wizishop"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or API).rstrip("/")
        self.token = CachedToken(self._login)
        self._shop: str | None = config.options.get("shop_id")

    async def _login(self) -> tuple[str, float]:
        response = await self.http.request(
            "POST", f"{self.base}/v3/auth/login",
            json={"username": self.config.credentials["username"],
                  "password": self.config.credentials["password"]},
            idempotent=True,
        )  # fmt: skip
        account = response.json()
        self._shop = self._shop or str(account["default_shop_id"])
        token = str(account["token"])
        return token, jwt_lifetime(token, JWT_LIFETIME)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call `/v3/shops/{shop}{path}`, logging in first."""
        await self.token.get()  # the login also tells the shop
        response = await self.http.request(
            method, f"{self.base}/v3/shops/{self._shop}{path}", auth=bearer(self.token), **kwargs
        )
        return response.json() if response.content else {}

    async def test(self) -> str:
        listing = await self._call("GET", "/products", params={"limit": 1, "page": 1})
        return f"WiziShop : boutique {self._shop}, {listing.get('total', '?')} produit(s)"

    async def _upsert(self, product: OutgoingProduct) -> str:
        body = {
            "name": product.name,
            "description": product.description,
            "short_description": product.short_description,
            "brand": product.brand,
            "status": "visible" if product.is_active else "hidden",
            "skus": [
                {
                    key: value
                    for key, value in {
                        "sku": product.sku, "ean13": product.ean, "price": product.price,
                        "stock": product.stock, "weight": product.weight,
                    }.items()
                    if value is not None
                }
            ],
        }  # fmt: skip
        body = {key: value for key, value in body.items() if value is not None}
        product_id = product.external_id or await self._by_sku(product.sku)
        if product_id is not None:
            await self._call("PUT", f"/products/{product_id}", json=body)
            return product_id
        created = str((await self._call("POST", "/products", json=body))["id"])
        self.note_created(product.product_id, created)
        return created

    async def _by_sku(self, sku: str) -> str | None:
        """The id of the product holding `sku`: every POST creates a new product, so an
        unlinked product is looked for before it is created (one created by a call whose
        answer was lost, or by the merchant)."""
        # How the filter matches is not documented: the exact SKU is picked among a few.
        listing = await self._call("GET", "/products", params={"sku": sku, "limit": 20})
        for result in listing.get("results") or []:
            if any(entry.get("sku") == sku for entry in result.get("skus") or []):
                return str(result["id"])
        return None

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        return await each_item(products, self._upsert)

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page_size = int(self.config.options.get("page_size", PAGE_SIZE))
        page, seen = 1, 0
        while True:
            listing = await self._call(
                "GET", "/products", params={"limit": page_size, "page": page}
            )
            results = listing.get("results") or []
            if results:
                yield [remote(product) for product in results]
            seen += len(results)
            total = listing.get("total")
            if len(results) < page_size or (total is not None and seen >= int(total)):
                return
            page += 1

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        async def send(level: StockLevel) -> str | None:
            await self._call(
                "PUT", f"/skus/{level.sku}", json={"method": "replace", "stock": level.quantity}
            )
            return level.external_id

        return await each_item(levels, send)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        async def send(price: PriceLevel) -> str | None:
            await self._call("PUT", f"/skus/{price.sku}", json={"price": price.price})
            return price.external_id

        return await each_item(prices, send)


def remote(product: dict[str, Any]) -> RemoteProduct:
    skus = product.get("skus") or [{}]
    first = skus[0]
    brand = product.get("brand")
    price = first.get("price")
    return RemoteProduct(
        external_id=str(product["id"]),
        sku=first.get("sku"),
        ean=first.get("ean13"),
        name=product.get("name"),
        description=product.get("description"),
        brand=brand.get("name") if isinstance(brand, dict) else brand,
        price=None if price is None else float(price),
        stock=first.get("stock"),
        weight=first.get("weight"),
        is_active=None if "status" not in product else product["status"] == "visible",
    )
