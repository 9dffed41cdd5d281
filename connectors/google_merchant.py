"""Google Merchant Center, through the Content API for Shopping v2.1.

- Auth: an OAuth2 access token (scope `https://www.googleapis.com/auth/content`) from
  Google's token endpoint, either for a service account (credential
  `service_account_json`: a JWT signed RS256 with its private key, grant
  `urn:ietf:params:oauth:grant-type:jwt-bearer`) or for a user who consented
  (`client_id`, `client_secret`, `refresh_token`, grant `refresh_token`). Option
  `token_url` replaces the endpoint (the service account's `token_uri` otherwise).
- Test: `GET /content/v2.1/accounts/authinfo`, checking the merchant (option
  `merchant_id`) is among the accounts the token reaches.
- Products: `POST /content/v2.1/products/batch` (custombatch), one `insert` entry per
  product (an insert replaces the product with the same offer id: an upsert); offerId =
  SKU, gtin = EAN, channel `online`, `contentLanguage`/`targetCountry`/`feedLabel` from
  options (`content_language`, `target_country`); `link` from option `product_url`
  (a template with `{sku}`). Each entry answers its product or its errors.
- Pull: `GET /content/v2.1/{merchantId}/products`, following `nextPageToken`.
- Stock: the Content API has availability, not quantities: custombatch `update`
  entries with `updateMask=availability` (in stock when the quantity is positive).
  Prices: `update` entries with `updateMask=price`. The REST id of a product is
  `online:{language}:{country}:{offerId}`, so unlinked products are addressed too.
- Rate limits: quota errors are 429 RESOURCE_EXHAUSTED without Retry-After; quotas are
  per minute, so the wait is a minute unless the answer names one.
"""

import base64
import json
import time
from collections.abc import AsyncIterator, Sequence
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
from connectors.http import PlatformError, PlatformHttp
from connectors.toolkit import CachedToken, default_wait

API = "/content/v2.1"
SCOPE = "https://www.googleapis.com/auth/content"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PAGE_SIZE = 250
QUOTA_WINDOW_SECONDS = 60.0


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
        self.base = (config.base_url or "https://shoppingcontent.googleapis.com").rstrip("/")
        self.merchant_id = str(config.options["merchant_id"])
        self.language = config.options.get("content_language", "fr")
        self.country = config.options.get("target_country", "FR")
        self.token = CachedToken(self._fetch_token)

    async def _fetch_token(self) -> tuple[str, float]:
        credentials = self.config.credentials
        if "service_account_json" in credentials:
            account = json.loads(credentials["service_account_json"])
            url = self.config.options.get("token_url") or account.get("token_uri", GOOGLE_TOKEN_URL)
            form = {"grant_type": JWT_BEARER, "assertion": service_account_assertion(account, url)}
        else:
            url = self.config.options.get("token_url", GOOGLE_TOKEN_URL)
            form = {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
                    "client_id": credentials["client_id"],
                    "client_secret": credentials["client_secret"]}  # fmt: skip
        body = (await self.http.request("POST", url, data=form)).json()
        return str(body["access_token"]), float(body.get("expires_in", 3600))

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {await self.token.get()}"}
        with default_wait(QUOTA_WINDOW_SECONDS):
            response = await self.http.request(method, self.base + path, headers=headers, **kwargs)
        return response.json()

    async def test(self) -> str:
        body = await self._request("GET", f"{API}/accounts/authinfo")
        merchants = {str(a.get("merchantId")) for a in body.get("accountIdentifiers", [])}
        merchants |= {str(a.get("aggregatorId")) for a in body.get("accountIdentifiers", [])}
        if self.merchant_id not in merchants:
            raise PlatformError(f"le compte marchand {self.merchant_id} n'est pas accessible")
        return f"Merchant Center {self.merchant_id}"

    def rest_id(self, sku: str) -> str:
        return f"online:{self.language}:{self.country}:{sku}"

    def _product(self, product: OutgoingProduct) -> dict[str, Any]:
        body: dict[str, Any] = {
            "offerId": product.sku,
            "title": product.name,
            "description": product.description or product.short_description or product.name,
            "contentLanguage": self.language,
            "targetCountry": self.country,
            "feedLabel": self.country,
            "channel": "online",
            "condition": "new",
            "availability": "in stock" if (product.stock or 0) > 0 else "out of stock",
        }
        if template := self.config.options.get("product_url"):
            body["link"] = template.format(sku=product.sku)
        if product.ean:
            body["gtin"] = product.ean
        if product.brand:
            body["brand"] = product.brand
        if product.price is not None:
            body["price"] = {"value": f"{product.price:.2f}", "currency": self.config.currency}
        if product.weight is not None:
            body["shippingWeight"] = {"value": product.weight, "unit": "kg"}
        return body

    async def _batch(self, entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Send custombatch entries (numbered by position); answers each entry's result."""
        for number, entry in enumerate(entries):
            entry |= {"batchId": number, "merchantId": self.merchant_id}
        body = await self._request("POST", f"{API}/products/batch", json={"entries": entries})
        return {int(e["batchId"]): e for e in body.get("entries", [])}

    @staticmethod
    def _outcome(product_id: Any, result: dict[str, Any] | None) -> ItemOutcome:
        if result is None:
            return ItemOutcome(product_id, ok=False, error="absent de la réponse du lot")
        if errors := result.get("errors"):
            messages = [e.get("message", "") for e in errors.get("errors", [])]
            return ItemOutcome(
                product_id, ok=False, error="; ".join(messages) or errors.get("message")
            )
        return ItemOutcome(product_id, ok=True, external_id=result.get("product", {}).get("id"))

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        results = await self._batch(
            [{"method": "insert", "product": self._product(p)} for p in products]
        )
        return [self._outcome(p.product_id, results.get(n)) for n, p in enumerate(products)]

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"maxResults": PAGE_SIZE}
            if token:
                params["pageToken"] = token
            body = await self._request("GET", f"{API}/{self.merchant_id}/products", params=params)
            yield [_remote(resource) for resource in body.get("resources", [])]
            token = body.get("nextPageToken")
            if not token:
                return

    async def _updates(
        self, items: Sequence[StockLevel | PriceLevel], mask: str,
        fields: list[dict[str, Any]],
    ) -> list[ItemOutcome]:  # fmt: skip
        entries = [
            {"method": "update", "productId": item.external_id or self.rest_id(item.sku),
             "updateMask": mask, "product": body}
            for item, body in zip(items, fields, strict=True)
        ]  # fmt: skip
        results = await self._batch(entries)
        return [self._outcome(item.product_id, results.get(n)) for n, item in enumerate(items)]

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        fields = [{"availability": "in stock" if lv.quantity > 0 else "out of stock"}
                  for lv in levels]  # fmt: skip
        return await self._updates(levels, "availability", fields)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        fields = [{"price": {"value": f"{p.price:.2f}", "currency": p.currency}} for p in prices]
        return await self._updates(prices, "price", fields)


def _remote(resource: dict[str, Any]) -> RemoteProduct:
    price = resource.get("price") or {}
    weight = resource.get("shippingWeight") or {}
    return RemoteProduct(
        external_id=resource["id"],
        sku=resource.get("offerId"),
        ean=resource.get("gtin"),
        name=resource.get("title"),
        description=resource.get("description"),
        brand=resource.get("brand"),
        price=float(price["value"]) if price.get("value") else None,
        weight=float(weight["value"]) if weight.get("value") is not None else None,
    )
