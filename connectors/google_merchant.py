"""Google Merchant Center, through the Merchant API (Products sub-API v1).

Checked against Google's Merchant API reference (developers.google.com/merchant/api:
the products_v1 REST reference and its discovery document, the "Add and manage
products" and "Make frequent updates" guides). The Content API for Shopping v2.1 this
adapter used before was shut down on 18 August 2026.

- Auth: an OAuth2 access token (scope `https://www.googleapis.com/auth/content`) from
  Google's token endpoint, either for a service account (credential
  `service_account_json`: a JWT signed RS256 with its private key, grant
  `urn:ietf:params:oauth:grant-type:jwt-bearer`) or for a user who consented
  (`client_id`, `client_secret`, `refresh_token`, grant `refresh_token`). Option
  `token_url` replaces the endpoint (the service account's `token_uri` otherwise).
- Options: `merchant_id` (the account), `data_source` (the id of a primary data source
  of input type API: the Merchant API only writes products into one),
  `content_language`, `feed_label` (`target_country` is accepted for it), `product_url`
  (a template with `{sku}` for the product's link).
- Test: `GET /accounts/v1/accounts/{account}` (403/404: the token does not reach the
  account), then `GET /datasources/v1/accounts/{account}/dataSources/{id}`.
- Products: `POST /products/v1/accounts/{account}/productInputs:insert?dataSource=…`,
  one request per product (the API has no custom batch): an insert replaces the input
  with the same offer id, language and data source, so it is an upsert and safe to
  send again (retried at once when its answer is lost). offerId = SKU, gtins = [EAN],
  attributes in `productAttributes` (price in micros, availability and condition as
  enums). The external id is the product's `{language}~{feedLabel}~{offerId}`.
- Pull: `GET /products/v1/accounts/{account}/products` (processed products), following
  `nextPageToken`.
- Stock: the Merchant API has availability, not quantities: `PATCH
  …/productInputs/{id}?updateMask=productAttributes.availability` (in stock when the
  quantity is positive). Prices: the same with `productAttributes.price`. A patch
  sets a value, so one whose answer was lost is sent again at once. The id is
  derived from the SKU, sent base64url-encoded as Google recommends.
- Tokens: a 401 renews the access token once and sends the request again; tokens are
  renewed a minute before the `expires_in` Google gives.
- Errors: quota errors are 429 RESOURCE_EXHAUSTED without Retry-After; quotas are per
  minute, so the wait is a minute unless the answer names one. A 410 Gone means the API
  version was retired: the connector as a whole fails with that reason, never each
  product.
"""

import base64
import json
import time
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
from connectors.http import ConnectorUnusable, PlatformError, PlatformHttp
from connectors.item_calls import default_wait, run_bounded
from connectors.tokens import CachedToken, bearer

SCOPE = "https://www.googleapis.com/auth/content"
MERCHANT_API_URL = "https://merchantapi.googleapis.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PAGE_SIZE = 1000  # the largest page products.list serves
QUOTA_WINDOW_SECONDS = 60.0
# Requests at once: one per product, within the per-minute method quotas.
CONCURRENCY = 8
RETIRED = (
    "cette API Google Merchant a été retirée par Google (HTTP 410) : "
    "le connecteur doit passer à une version en service"
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_account_assertion(account: dict[str, Any], token_url: str) -> str:
    """The JWT a service account exchanges for an access token (RFC 7523)."""
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": account.get("private_key_id", "")}
    claims = {"iss": account["client_email"], "scope": SCOPE, "aud": token_url,
              "iat": now, "exp": now + 3600}  # fmt: skip
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PlatformError("compte de service Google : clé privée RSA attendue")
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


@register
class GoogleMerchantAdapter(PlatformAdapter):
    platform = "google_merchant"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        options = config.options
        self.base = (config.base_url or MERCHANT_API_URL).rstrip("/")
        self.account = f"accounts/{options['merchant_id']}"
        source = str(options.get("data_source") or "")
        self._data_source = source if "/" in source else f"{self.account}/dataSources/{source}"
        self._has_data_source = bool(source)
        self.language = options.get("content_language", "fr")
        self.feed_label = options.get("feed_label") or options.get("target_country", "FR")
        self.token = CachedToken(self._fetch_token)

    async def _fetch_token(self) -> tuple[str, float]:
        credentials = self.config.credentials
        if "service_account_json" in credentials:
            account = json.loads(credentials["service_account_json"])
            url = self.config.options.get("token_url") or account.get("token_uri", GOOGLE_TOKEN_URL)
            form = {"grant_type": JWT_BEARER, "assertion": service_account_assertion(account, url)}
        else:
            url = self.config.options.get("token_url") or GOOGLE_TOKEN_URL
            form = {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
                    "client_id": credentials["client_id"],
                    "client_secret": credentials["client_secret"]}  # fmt: skip
        body = (await self.http.request("POST", url, data=form, idempotent=True)).json()
        return str(body["access_token"]), float(body.get("expires_in", 3600))

    @property
    def data_source(self) -> str:
        """The data source products are written into (the Merchant API requires one)."""
        if not self._has_data_source:
            raise PlatformError(
                "option data_source requise : l'identifiant d'une source de données "
                "principale de type API dans Merchant Center"
            )
        return self._data_source

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            with default_wait(QUOTA_WINDOW_SECONDS):
                response = await self.http.request(
                    method, self.base + path, auth=bearer(self.token), **kwargs
                )
        except PlatformError as exc:
            if exc.status == 410:
                raise ConnectorUnusable(RETIRED, status=410, body=exc.body) from exc
            raise
        return response.json()

    async def test(self) -> str:
        source_path = f"/datasources/v1/{self.data_source}"
        try:
            account = await self._request("GET", f"/accounts/v1/{self.account}")
        except PlatformError as exc:
            if exc.status in (403, 404):
                raise PlatformError(
                    f"le compte marchand {self.account.removeprefix('accounts/')} "
                    "n'est pas accessible", status=exc.status,
                ) from exc  # fmt: skip
            raise
        source = await self._request("GET", source_path)
        if source.get("input") not in (None, "API"):
            raise PlatformError(
                f"la source de données {self.data_source} n'accepte pas l'API "
                f"(type {source.get('input')})"
            )
        return f"Merchant Center {account.get('accountName') or account.get('accountId')}"

    def product_key(self, sku: str) -> str:
        return f"{self.language}~{self.feed_label}~{sku}"

    def _input_path(self, sku: str) -> str:
        # The encoded form is the one that survives a SKU holding "/", "%" or "~".
        encoded = _b64url(self.product_key(sku).encode())
        return f"/products/v1/{self.account}/productInputs/{encoded}"

    def _attributes(self, product: OutgoingProduct) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "title": product.name,
            "description": product.description or product.short_description or product.name,
            "condition": "NEW",
            "availability": _availability(product.stock or 0),
        }
        if template := self.config.options.get("product_url"):
            attributes["link"] = template.format(sku=product.sku)
        if product.ean:
            attributes["gtins"] = [product.ean]
        if product.brand:
            attributes["brand"] = product.brand
        if product.price is not None:
            attributes["price"] = _price(product.price, self.config.currency)
        if product.weight is not None:
            attributes["shippingWeight"] = {"value": product.weight, "unit": "kg"}
        return attributes

    async def _insert(self, product: OutgoingProduct) -> str:
        body = {
            "offerId": product.sku,
            "contentLanguage": self.language,
            "feedLabel": self.feed_label,
            "productAttributes": self._attributes(product),
        }
        answer = await self._request(
            "POST", f"/products/v1/{self.account}/productInputs:insert",
            params={"dataSource": self.data_source}, json=body, idempotent=True,
        )  # fmt: skip
        return _key_of(answer.get("name")) or self.product_key(product.sku)

    async def _patch(self, sku: str, field: str, value: Any) -> str:
        await self._request(
            "PATCH", self._input_path(sku),
            params={"dataSource": self.data_source,
                    "updateMask": f"productAttributes.{field}"},
            json={"productAttributes": {field: value}}, idempotent=True,
        )  # fmt: skip
        return self.product_key(sku)

    async def _each(
        self, items: Sequence[OutgoingProduct | StockLevel | PriceLevel], calls: list[Any]
    ) -> list[ItemOutcome]:
        results = await run_bounded(calls, limit=CONCURRENCY)
        outcomes = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, ConnectorUnusable):
                raise result
            if isinstance(result, PlatformError):
                outcomes.append(ItemOutcome(item.product_id, ok=False, error=_reason(result)))
            else:
                outcomes.append(ItemOutcome(item.product_id, ok=True, external_id=result))
        return outcomes

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        return await self._each(products, [partial(self._insert, p) for p in products])

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"pageSize": PAGE_SIZE}
            if token:
                params["pageToken"] = token
            body = await self._request(
                "GET", f"/products/v1/{self.account}/products", params=params
            )
            yield [_remote(product) for product in body.get("products", [])]
            token = body.get("nextPageToken")
            if not token:
                return

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        calls = [partial(self._patch, lv.sku, "availability", _availability(lv.quantity))
                 for lv in levels]  # fmt: skip
        return await self._each(levels, calls)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        calls = [partial(self._patch, p.sku, "price", _price(p.price, p.currency)) for p in prices]
        return await self._each(prices, calls)


def _availability(quantity: int) -> str:
    return "IN_STOCK" if quantity > 0 else "OUT_OF_STOCK"


def _price(amount: float, currency: str) -> dict[str, str]:
    # Micros as an int64 string, rounded to the cent as prices are.
    return {"amountMicros": str(round(amount * 100) * 10_000), "currencyCode": currency}


def _key_of(name: str | None) -> str | None:
    """`language~feedLabel~offerId` from a resource name `accounts/…/products/{key}`."""
    return name.rsplit("/", 1)[-1] if name else None


def _reason(exc: PlatformError) -> str:
    """Google's own message for a refused product, rather than the whole answer."""
    try:
        return str(json.loads(exc.body or "")["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return exc.message


_WEIGHT_IN_KG = {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.028349523125}


def _remote(product: dict[str, Any]) -> RemoteProduct:
    attributes = product.get("productAttributes") or {}
    price = attributes.get("price") or {}
    weight = attributes.get("shippingWeight") or {}
    factor = _WEIGHT_IN_KG.get(str(weight.get("unit", "kg")).lower())
    gtins = attributes.get("gtins") or []
    return RemoteProduct(
        external_id=_key_of(product.get("name")) or "",
        sku=product.get("offerId"),
        ean=gtins[0] if gtins else None,
        name=attributes.get("title"),
        description=attributes.get("description"),
        brand=attributes.get("brand"),
        price=int(price["amountMicros"]) / 1_000_000 if price.get("amountMicros") else None,
        weight=float(weight["value"]) * factor
        if weight.get("value") is not None and factor
        else None,
        is_active=None,
    )
