"""SAP Commerce Cloud: OCC v2 REST for reading, the Integration API (OData v2) for writing.

Checked against SAP's Help Portal documentation for SAP Commerce Cloud (OCC v2 API
reference; Integration API module: inbound requests, $batch, integration objects and
their authentication).

- Auth, either or both:
  - OAuth2 client credentials (credentials `client_id`, `client_secret`) at
    `POST {base}/authorizationserver/oauth/token` (`grant_type=client_credentials`,
    client id and secret in the form), for the OAuth client defined in Backoffice; the
    bearer token goes on every call, renewed before it expires and once after a 401;
  - HTTP Basic (credentials `username`, `password`) for an integration user (member
    of `integrationadmingroup`), which is how the out-of-the-box inbound integration
    objects are secured. Integration API calls then use Basic; OCC reads use the OAuth
    token when there is one, else go anonymous (base sites and product search are
    public storefront resources).
- Test: `GET /occ/v2/basesites`, and with Basic credentials
  `GET /odata2webservices/{product integration object}/$metadata`, which checks them.
- Pull: `GET /occ/v2/{baseSiteId}/products/search?fields=FULL&currentPage=&pageSize=`,
  following OCC's `pagination` (zero-based `currentPage`, `totalPages`).
- Writes: OCC is a storefront API without catalog writes; SAP's documented inbound
  path is the Integration API (integrationservices): OData v2 `$batch` on
  `/odata2webservices/{integration object}/$batch`, one changeset per item so that
  each item commits or fails on its own (a failed changeset answers one
  `application/http` error part instead of a nested multipart). Integration objects
  are modelled per installation; the defaults are SAP's usual inbound ones
  (`InboundProduct`/Products, `InboundStockLevel`/StockLevels,
  `InboundPriceRow`/PriceRows) and can be renamed in options. Posting an entity is an
  upsert on its integration key (code + catalog version), so the product code is the
  external id and a linked product is matched by it, and a `$batch` whose answer was
  lost (timeout, 5xx, connection reset) is sent again as it is: nothing is created
  twice, and no lookup is needed.
- Stock sends `available` per warehouse only; prices send the price row only.
- Throttling is configured per deployment in front of the web tier: 429 with
  Retry-After, handled by PlatformHttp; a 429/5xx inside the batch is transient for
  that item.
"""

import json
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
from connectors.http import Auth, PlatformError, PlatformHttp
from connectors.multipart import (
    Part,
    decode_multipart,
    encode_multipart,
    http_request_message,
    new_boundary,
    parse_http_response,
)
from connectors.tokens import ClientCredentials, basic_authorization

PAGE_SIZE = 100


@register
class SapCommerceAdapter(PlatformAdapter):
    platform = "sap_commerce"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or "").rstrip("/")
        options = config.options
        self.site = options.get("base_site", "electronics")
        self.catalog_version = {
            "catalog": {"id": options.get("catalog", "Default")},
            "version": options.get("catalog_version", "Staged"),
        }
        credentials = config.credentials
        self.token = (
            ClientCredentials(
                http,
                f"{self.base}/authorizationserver/oauth/token",
                credentials["client_id"],
                credentials["client_secret"],
                basic_auth=False,
            )
            if credentials.get("client_id")
            else None
        )
        self.basic = (
            basic_authorization(credentials["username"], credentials.get("password", ""))
            if credentials.get("username")
            else None
        )
        if self.token is None and self.basic is None:
            raise PlatformError(
                "SAP Commerce : identifiants client_id/client_secret (OAuth) ou "
                "username/password (Basic) requis"
            )

    def _occ_auth(self) -> Auth | None:
        """The OAuth token when there is one (renewed after a 401), else anonymous."""
        return self.token.headers if self.token else None

    def _integration_auth(self) -> tuple[dict[str, str], Auth | None]:
        """Headers and renewable auth for the Integration API: the integration user's
        Basic header when given (a 401 there is final: the same password would be sent
        again), else the OAuth token."""
        if self.basic:
            return {"Authorization": self.basic}, None
        return {}, self._occ_auth()

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = await self.http.request(
            "GET", f"{self.base}{path}", auth=self._occ_auth(), params=params
        )
        return response.json()

    async def test(self) -> str:
        sites = (await self._get("/occ/v2/basesites")).get("baseSites", [])
        names = [site.get("name") or site.get("uid", "?") for site in sites]
        if self.basic:
            product_object = self.config.options.get("product_integration_object", "InboundProduct")
            headers, auth = self._integration_auth()
            await self.http.request(
                "GET", f"{self.base}/odata2webservices/{product_object}/$metadata",
                headers=headers, auth=auth,
            )  # fmt: skip
        return f"SAP Commerce : {len(names)} site(s) ({', '.join(names)})"

    async def _batch(
        self, integration_object: str, entity_set: str, items: Sequence[Any],
        bodies: Sequence[dict[str, Any]], ids: Sequence[str],
    ) -> list[ItemOutcome]:  # fmt: skip
        """POST each body to `entity_set` in its own changeset of one OData $batch. Each
        POST is an upsert on the integration key, so a batch whose answer was lost is
        sent again as it is: nothing can be created twice."""
        batch = new_boundary("batch")
        parts = []
        for body in bodies:
            changeset = new_boundary("changeset")
            request = http_request_message(
                "POST", entity_set,
                {"Content-Type": "application/json", "Accept": "application/json"},
                json.dumps(body).encode(),
            )  # fmt: skip
            inner = Part(
                {"Content-Type": "application/http", "Content-Transfer-Encoding": "binary"},
                request,
            )
            parts.append(
                Part(
                    {"Content-Type": f"multipart/mixed; boundary={changeset}"},
                    encode_multipart([inner], changeset),
                )
            )
        headers, auth = self._integration_auth()
        response = await self.http.request(
            "POST",
            f"{self.base}/odata2webservices/{integration_object}/$batch",
            headers={
                **headers,
                "Content-Type": f"multipart/mixed; boundary={batch}",
                "Accept": "multipart/mixed",
            },
            content=encode_multipart(parts, batch),
            auth=auth,
            idempotent=True,
        )
        answers = decode_multipart(response.content, response.headers["content-type"])
        outcomes = []
        for item, external_id, answer in zip(items, ids, answers, strict=True):
            content_type = answer.headers.get("content-type", "")
            message = answer.body
            if content_type.startswith("multipart/"):
                message = decode_multipart(answer.body, content_type)[0].body
            status, _headers, content = parse_http_response(message)
            outcomes.append(outcome(item.product_id, external_id, status, content))
        return outcomes

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        bodies: list[dict[str, Any]] = []
        for product in products:
            body = {
                "code": product.external_id or product.sku,
                "catalogVersion": self.catalog_version,
                "name": product.name,
                "description": product.description,
                "summary": product.short_description,
                "ean": product.ean,
                "manufacturerName": product.brand,
                "approvalStatus": {"code": "approved" if product.is_active else "unapproved"},
            }
            bodies.append({key: value for key, value in body.items() if value is not None})
        return await self._batch(
            self.config.options.get("product_integration_object", "InboundProduct"),
            "Products", products, bodies, [body["code"] for body in bodies],
        )  # fmt: skip

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page_size = int(self.config.options.get("page_size", PAGE_SIZE))
        page = 0
        while True:
            result = await self._get(
                f"/occ/v2/{self.site}/products/search",
                {"query": "", "fields": "FULL", "currentPage": page, "pageSize": page_size},
            )
            found = result.get("products", [])
            if found:
                yield [remote(product) for product in found]
            page += 1
            if page >= int(result.get("pagination", {}).get("totalPages", 0)):
                return

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        warehouse = self.config.options.get("warehouse", "default")
        ids = [level.external_id or level.sku for level in levels]
        bodies = [
            {"productCode": code, "warehouse": {"code": warehouse}, "available": level.quantity}
            for level, code in zip(levels, ids, strict=True)
        ]
        return await self._batch(
            self.config.options.get("stock_integration_object", "InboundStockLevel"),
            "StockLevels", levels, bodies, ids,
        )  # fmt: skip

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        ids = [price.external_id or price.sku for price in prices]
        bodies = [
            {
                "product": {"code": code, "catalogVersion": self.catalog_version},
                "price": price.price,
                "currency": {"isocode": price.currency},
                "unit": {"code": "pieces"},
                "net": False,
            }
            for price, code in zip(prices, ids, strict=True)
        ]
        return await self._batch(
            self.config.options.get("price_integration_object", "InboundPriceRow"),
            "PriceRows", prices, bodies, ids,
        )  # fmt: skip


def outcome(product_id: Any, external_id: str, status: int, body: bytes) -> ItemOutcome:
    if 200 <= status < 300:
        return ItemOutcome(product_id, ok=True, external_id=external_id)
    try:
        error = json.loads(body).get("error", {})
        message = error.get("message", {}).get("value") or error.get("code")
    except (ValueError, AttributeError):
        message = None
    return ItemOutcome(
        product_id, ok=False, error=message or f"HTTP {status}",
        transient=status == 429 or status >= 500,
    )  # fmt: skip


def remote(product: dict[str, Any]) -> RemoteProduct:
    price = (product.get("price") or {}).get("value")
    stock = (product.get("stock") or {}).get("stockLevel")
    return RemoteProduct(
        external_id=str(product["code"]),
        sku=str(product["code"]),
        ean=product.get("ean"),
        name=product.get("name"),
        description=product.get("description"),
        brand=product.get("manufacturer"),
        price=None if price is None else float(price),
        stock=None if stock is None else int(stock),
        is_active=product.get("purchasable"),
    )
