"""Cdiscount marketplace, through the Octopia Seller API v2
(`https://api.octopia-io.net/seller/v2`), which replaced the SOAP Marketplace API.

Checked against Octopia's Seller API v2 documentation (developer.octopia-io.net:
authentication, sellers, offers). The product-integration and offer-package
resources (paths, the package life cycle and the report fields) could NOT be confirmed
against a public reference: they follow Octopia's published overview and naming and
are the least certain part of this adapter.

- Auth: OAuth2 client credentials at Octopia's identity server
  (`POST https://auth.octopia-io.net/auth/realms/maas/protocol/openid-connect/token`,
  client_id and client_secret in the form). Tokens last two hours and the token
  endpoint is limited per hour, so one token is reused until a minute before it
  expires, and renewed once when a call is refused with 401. Every call carries the
  bearer token and the `SellerId` header.
- Test: `GET /sellers` (the seller's information).
- Push products maps onto product sheet integration: `POST /products-integration`
  with `{"products": [...]}` (gtin = EAN, sellerProductReference = our SKU, title,
  description, brand) answers a package id; `GET
  /products-integration-reports?packageId=` then reports each sheet (`Integrated`, or
  refused with its errors). It is polled a few times (`options.report_polls`,
  `options.report_wait` seconds apart); a sheet not reported yet is transient. A sheet
  is keyed by the seller's product reference (and its GTIN), so a package sent again
  after an unknown outcome (a 5xx, a timeout) updates the same products: nothing is
  looked up before. On
  Cdiscount the sheet and the offer are separate things: price and stock go through
  the offer packages of push_prices and push_stock.
- Stock and prices map onto offer packages: `POST /offer-packages`
  (`packageType: Update`; the id comes back in the body or the `content-location`),
  `POST /offer-packages/{id}/offer-requests` with a list of requests, one per SKU,
  carrying `quantity` only or `price.price` only, `PATCH /offer-packages/{id}` with
  `state: Ready`, then `GET /offer-packages/{id}/offer-requests-results`
  (`integrationStatus` and `results` per request), polled the same way.
- Pull: `GET /offers?salesChannelId=CDISFR&pageIndex=&pageSize=`, until a page comes
  back short.
- Throttling: 429 with Retry-After, transient through PlatformHttp.
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
from connectors.reports import Report, poll, reported_outcomes
from connectors.tokens import ClientCredentials

API = "https://api.octopia-io.net/seller/v2"
TOKEN_URL = "https://auth.octopia-io.net/auth/realms/maas/protocol/openid-connect/token"
SALES_CHANNEL = "CDISFR"
PAGE_SIZE = 100
REFUSED_MESSAGE = "refusé par Cdiscount"
INTEGRATED = "Integrated"
UNFINISHED = (None, "Pending", "InProgress")


def errors_of(item: dict[str, Any]) -> str:
    """Why an item was not integrated: product reports carry `errors`, offer results
    carry `results` (a result code and message each)."""
    errors = item.get("errors") or item.get("results") or []
    text = "; ".join(
        f"{error.get('code') or error.get('resultCode') or ''} {error.get('message', '')}".strip()
        for error in errors
    )
    return text or str(item.get("status") or item.get("integrationStatus") or REFUSED_MESSAGE)


@register
class CdiscountAdapter(PlatformAdapter):
    platform = "cdiscount"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or API).rstrip("/")
        self.sales_channel = config.options.get("sales_channel", SALES_CHANNEL)
        self.token = ClientCredentials(
            http,
            config.options.get("token_url", TOKEN_URL),
            config.credentials["client_id"],
            config.credentials["client_secret"],
            basic_auth=False,
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # The token is renewed before it lapses, and once more if Octopia refuses it (401).
        seller = {"SellerId": self.config.credentials["seller_id"]}
        return await self.http.request(
            method, f"{self.base}{path}", headers=seller, auth=self.token.headers, **kwargs
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, **kwargs)
        return response.json() if response.content else {}

    def _polled(self) -> dict[str, Any]:
        options = self.config.options
        return {
            "attempts": int(options.get("report_polls", 5)),
            "wait": float(options.get("report_wait", 10.0)),
        }

    async def test(self) -> str:
        seller = await self._call("GET", "/sellers")
        name = seller.get("name") or seller.get("shopName") or self.config.credentials["seller_id"]
        return f"Cdiscount : vendeur {name}"

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        sheets = []
        for product in products:
            sheet = {
                "gtin": product.ean,
                "sellerProductReference": product.sku,
                "title": product.name,
                "description": product.description or product.short_description,
                "brand": product.brand,
            }
            sheets.append({key: value for key, value in sheet.items() if value is not None})
        package = package_id(
            await self._send("POST", "/products-integration", json={"products": sheets})
        )
        return await self._reported(
            products, [product.sku for product in products], "/products-integration-reports",
            params={"packageId": package, "pageIndex": 1, "pageSize": PAGE_SIZE},
            key="sellerProductReference", status="status",
            pending="fiche en cours d'intégration chez Cdiscount",
        )  # fmt: skip

    async def _offer_package(
        self, items: Sequence[Any], requests: list[dict[str, Any]]
    ) -> list[ItemOutcome]:
        package = package_id(
            await self._send("POST", "/offer-packages", json={"packageType": "Update"})
        )
        await self._call("POST", f"/offer-packages/{package}/offer-requests", json=requests)
        await self._call("PATCH", f"/offer-packages/{package}", json={"state": "Ready"})
        return await self._reported(
            items, [request["sellerExternalReference"] for request in requests],
            f"/offer-packages/{package}/offer-requests-results",
            key="sellerExternalReference", status="integrationStatus",
            pending="offre en cours d'intégration chez Cdiscount",
        )  # fmt: skip

    async def _reported(
        self, items: Sequence[Any], skus: list[str], path: str, *,
        params: dict[str, Any] | None = None, key: str, status: str, pending: str,
    ) -> list[ItemOutcome]:  # fmt: skip
        """Poll an integration report until it has a final status for every SKU."""

        async def fetch() -> dict[str, Report]:
            body = await self._call("GET", path, params=params)
            return {
                item[key]: (
                    item[status] == INTEGRATED,
                    None if item[status] == INTEGRATED else errors_of(item),
                )
                for item in body.get("items", [])
                if item.get(status) not in UNFINISHED
            }

        reports = await poll(fetch, lambda r: all(s in r for s in skus), **self._polled())
        return reported_outcomes(items, skus, reports, pending=pending)

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        requests = [
            {"sellerExternalReference": level.sku, "quantity": level.quantity} for level in levels
        ]
        return await self._offer_package(levels, requests)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        requests = [
            {"sellerExternalReference": price.sku, "price": {"price": price.price}}
            for price in prices
        ]
        return await self._offer_package(prices, requests)

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        page_size = int(self.config.options.get("page_size", PAGE_SIZE))
        page = 1
        while True:
            body = await self._call(
                "GET", "/offers",
                params={"salesChannelId": self.sales_channel, "pageIndex": page,
                        "pageSize": page_size},
            )  # fmt: skip
            items = body.get("items", [])
            if items:
                yield [remote(item) for item in items]
            if len(items) < page_size:
                return
            page += 1


def package_id(response: httpx.Response) -> str:
    """The package id, from the body or else the `content-location` of the new package."""
    answer = response.json() if response.content else {}
    package = answer.get("packageId") if isinstance(answer, dict) else None
    location = response.headers.get("content-location")
    if not package and location:
        package = location.rstrip("/").rsplit("/", 1)[-1]
    if not package:
        raise PlatformError("Cdiscount n'a pas renvoyé d'identifiant de package")
    return str(package)


def remote(offer: dict[str, Any]) -> RemoteProduct:
    price = offer.get("price") or {}
    product = offer.get("product") or {}
    return RemoteProduct(
        external_id=str(offer.get("sellerExternalReference") or offer.get("offerId")),
        sku=offer.get("sellerExternalReference"),
        ean=product.get("gtin") or offer.get("gtin"),
        name=product.get("title"),
        price=price.get("price") if isinstance(price, dict) else price,
        stock=offer.get("quantity"),
    )
