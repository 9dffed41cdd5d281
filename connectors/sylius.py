"""Sylius, through its Admin API (API Platform, `/api/v2/admin`, Sylius 1.12 and 2.x).

Checked against Sylius's API documentation (docs.sylius.com: the API Platform based
Admin API v2, authentication, products, product variants, channel pricings).

- Auth: `POST /api/v2/admin/administrators/token` with the administrator's email and
  password answers a JWT (`token`), sent as a bearer token; a new one is asked for
  shortly before its `exp` and once after a 401.
- Test: `GET /api/v2/admin/channels`.
- Products: the Admin API has no batch endpoint, so one product per call. A product
  is looked up by code (the external id when linked, else our SKU): found, it is
  updated with `PUT /products/{code}` (the existing translation's `@id` is sent back,
  as Sylius requires to update rather than duplicate it); not found, it is created with
  `POST /products` and its variant with `POST /product-variants` (code = SKU, `onHand`,
  channel pricing in cents). Product and variant codes are unique (a second POST
  answers 422), and looking up first makes a retried chunk converge instead of failing
  on codes it already created. A product found but not linked yet may come from a
  create whose answer was lost before its variant was sent: its variant is looked up
  (`GET /product-variants/{code}`) and created when missing. Sylius has no GTIN field:
  the EAN is not sent.
- Pull: `GET /products?page=&itemsPerPage=`, following the Hydra `view.next` link
  (`hydra:`-prefixed before API Platform 3), plus one `GET /product-variants` filtered
  on the page's products for SKU, price and stock.
- Stock: `PUT /product-variants/{code}` with `onHand` only. Prices: the variant's
  channel pricing for the connector's channel (`@id` kept), `price` in cents only.
- Rate limits are not part of Sylius itself; a 429 (with Retry-After) from the
  front proxy is transient like any 5xx.
"""

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
from connectors.item_calls import each_item
from connectors.tokens import CachedToken, bearer, jwt_lifetime

ADMIN = "/api/v2/admin"
JSON_LD = "application/ld+json"
PAGE_SIZE = 50
JWT_LIFETIME = 3600.0  # when the JWT has no `exp` (Sylius' default lifetime)


def cents(price: float) -> int:
    return round(price * 100)


def slug(*texts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") for text in texts)


def hydra(body: dict[str, Any], key: str) -> Any:
    """A Hydra collection field, `hydra:`-prefixed (API Platform 2) or not (3+)."""
    return body.get(f"hydra:{key}", body.get(key))


@register
class SyliusAdapter(PlatformAdapter):
    platform = "sylius"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or "").rstrip("/")
        self.channel = config.channel or config.options["channel"]
        self.locale = config.options.get("locale", "fr_FR")
        self.token = CachedToken(self._login)

    async def _login(self) -> tuple[str, float]:
        response = await self.http.request(
            "POST", f"{self.base}{ADMIN}/administrators/token",
            json={"email": self.config.credentials["email"],
                  "password": self.config.credentials["password"]},
            idempotent=True,
        )  # fmt: skip
        token = str(response.json()["token"])
        return token, jwt_lifetime(token, JWT_LIFETIME)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Accept": JSON_LD}
        if "json" in kwargs:
            headers["Content-Type"] = JSON_LD
        url = path if path.startswith("http") else f"{self.base}{path}"
        response = await self.http.request(
            method, url, headers=headers, auth=bearer(self.token), **kwargs
        )
        return response.json() if response.content else {}

    async def test(self) -> str:
        channels = hydra(await self._request("GET", f"{ADMIN}/channels"), "member") or []
        names = [channel.get("name") or channel.get("code", "?") for channel in channels]
        return f"Sylius : {len(names)} channel(s) ({', '.join(names)})"

    def _translation(self, product: OutgoingProduct) -> dict[str, Any]:
        fields = {
            "locale": self.locale,
            "name": product.name,
            "slug": slug(product.name, product.sku),
            "description": product.description,
            "shortDescription": product.short_description,
        }
        return {key: value for key, value in fields.items() if value is not None}

    async def _found(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(await self._request("GET", path))
        except PlatformError as exc:
            if exc.status != 404:
                raise
            return None

    async def _upsert(self, product: OutgoingProduct) -> str:
        code = product.external_id or product.sku
        existing = await self._found(f"{ADMIN}/products/{code}")
        translation = self._translation(product)
        if existing is None:
            await self._request(
                "POST", f"{ADMIN}/products",
                json={"code": code, "enabled": product.is_active,
                      "channels": [f"{ADMIN}/channels/{self.channel}"],
                      "translations": {self.locale: translation}},
            )  # fmt: skip
        else:
            current = (existing.get("translations") or {}).get(self.locale) or {}
            if "@id" in current:
                translation["@id"] = current["@id"]
            await self._request(
                "PUT", f"{ADMIN}/products/{code}",
                json={"enabled": product.is_active, "translations": {self.locale: translation}},
            )  # fmt: skip
        # An unlinked product found may come from a create answered with an error, whose
        # variant was never sent (or whose variant's answer was lost too).
        if existing is None or (
            product.external_id is None
            and await self._found(f"{ADMIN}/product-variants/{product.sku}") is None
        ):
            await self._create_variant(product, code)
        if product.external_id is None:
            self.note_created(product.product_id, code)
        return code

    async def _create_variant(self, product: OutgoingProduct, code: str) -> None:
        variant: dict[str, Any] = {
            "product": f"{ADMIN}/products/{code}",
            "code": product.sku,
            "tracked": product.stock is not None,
            "onHand": product.stock or 0,
            "translations": {self.locale: {"locale": self.locale, "name": product.name}},
        }
        if product.price is not None:
            variant["channelPricings"] = {
                self.channel: {"channelCode": self.channel, "price": cents(product.price)}
            }
        if product.weight is not None:
            variant["weight"] = product.weight
        await self._request("POST", f"{ADMIN}/product-variants", json=variant)

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        return await each_item(products, self._upsert)

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page_size = int(self.config.options.get("page_size", PAGE_SIZE))
        next_page: str | None = f"{ADMIN}/products?page=1&itemsPerPage={page_size}"
        while next_page:
            body = await self._request("GET", next_page)
            members = hydra(body, "member") or []
            if members:
                yield await self._with_variants(members)
            view = hydra(body, "view") or {}
            next_page = hydra(view, "next")

    async def _with_variants(self, members: list[dict[str, Any]]) -> list[RemoteProduct]:
        iris = [f"{ADMIN}/products/{member['code']}" for member in members]
        variants = hydra(
            await self._request(
                "GET", f"{ADMIN}/product-variants",
                params={"product[]": iris, "itemsPerPage": max(len(iris) * 10, 30)},
            ),
            "member",
        ) or []  # fmt: skip
        first_variant: dict[str, dict[str, Any]] = {}
        for variant in variants:
            first_variant.setdefault(str(variant.get("product", "")).rsplit("/", 1)[-1], variant)
        return [self._remote(member, first_variant.get(member["code"], {})) for member in members]

    def _remote(self, member: dict[str, Any], variant: dict[str, Any]) -> RemoteProduct:
        translations = member.get("translations") or {}
        text: dict[str, Any] = translations.get(self.locale) or next(
            iter(translations.values()), {}
        )
        pricing = (variant.get("channelPricings") or {}).get(self.channel) or {}
        return RemoteProduct(
            external_id=str(member["code"]),
            sku=variant.get("code"),
            name=text.get("name"),
            description=text.get("description"),
            price=pricing["price"] / 100 if pricing.get("price") is not None else None,
            stock=variant.get("onHand"),
            weight=variant.get("weight"),
            is_active=member.get("enabled"),
        )

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        async def send(level: StockLevel) -> str:
            await self._request(
                "PUT", f"{ADMIN}/product-variants/{level.sku}", json={"onHand": level.quantity}
            )
            return level.external_id or level.sku

        return await each_item(levels, send)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        async def send(price: PriceLevel) -> str:
            variant = await self._request("GET", f"{ADMIN}/product-variants/{price.sku}")
            current = (variant.get("channelPricings") or {}).get(self.channel) or {}
            pricing: dict[str, Any] = {"channelCode": self.channel, "price": cents(price.price)}
            if "@id" in current:
                pricing["@id"] = current["@id"]
            await self._request(
                "PUT", f"{ADMIN}/product-variants/{price.sku}",
                json={"channelPricings": {self.channel: pricing}},
            )  # fmt: skip
            return price.external_id or price.sku

        return await each_item(prices, send)
