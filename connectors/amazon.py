"""Amazon, through the Selling Partner API: Listings Items API 2021-08-01 and, for large
pushes, the JSON_LISTINGS_FEED of the Feeds API 2021-06-30.

Checked against Amazon's Selling Partner API documentation (developer-docs.amazon.com/sp-api:
Listings Items API 2021-08-01 reference, Sellers API, Login with Amazon token
exchange, usage plans and rate limits; Feeds API 2021-06-30 reference and rate limits,
the changelog of May 2025 on the JSON_LISTINGS_FEED's size and rate).

- Auth: Login with Amazon. The app's `client_id`/`client_secret` and the seller's
  `refresh_token` are exchanged at `POST https://api.amazon.com/auth/o2/token` (grant
  `refresh_token`; option `token_url` replaces it) for an access token of an hour, sent
  as `x-amz-access-token` to the regional endpoint (base URL, e.g.
  `https://sellingpartnerapi-eu.amazon.com`). Options: `seller_id`, `marketplace_id`,
  `product_type` (default PRODUCT), `language_tag` (default fr_FR). The token is
  renewed a minute before it expires, and once when a call is refused with it: a 401,
  or the SP-API's own way of saying it, a 403 Unauthorized whose details say "The
  access token you provided has expired." (amzn/selling-partner-api-models #4122).
- Test: `GET /sellers/v1/marketplaceParticipations`, checking the marketplace is there.
- Products: each listing is the body of a Listings Items PUT (requirements LISTING):
  item name, description, brand, EAN (`externally_assigned_product_identifier`), new
  condition, weight, `purchasable_offer` and `fulfillment_availability`.
  A push of fewer than `feed_threshold` products (option, 500 by default) is sent
  with `PUT /listings/2021-08-01/items/{sellerId}/{sku}`, one call per SKU, at most
  `concurrency` (option, default 5, the operation's documented burst) at a time: it
  ends within 100 s at 5/s and each outcome is known at once. A submission answered
  INVALID fails its item with the ERROR issues Amazon gives.
  From `feed_threshold` products on, the push is one JSON_LISTINGS_FEED
  (connectors.amazon_feeds: feed document uploaded to its presigned URL without
  credentials, createFeed, getFeed polled within the connector's wait, the
  processing report's issues per message): chunks of 10,000 listings (the
  documented limit until May 2025, 25,000 since), submissions paced at 5 per 5
  minutes per seller (JSON_LISTINGS_FEED's documented rate). A feed still queued or
  in progress past the wait leaves its items transient, and their next attempt
  polls the same feed. A createFeed whose answer was lost is looked up with
  getFeeds before another is sent.
- Pull: `GET /listings/2021-08-01/items/{sellerId}` (searchListingsItems) with
  summaries, attributes, offers and fulfillment availability, following
  `pagination.nextToken`.
- Stock: `PATCH` of `/attributes/fulfillment_availability` only; prices: `PATCH` of
  `/attributes/purchasable_offer` only; one call per SKU, bounded likewise (a price
  or stock change is small and wanted at once: no feed), in chunks of 100 (the job's
  `level_chunk_size`), not the feeds' 10,000.
- Rate limits: a 429 is transient; the wait is Retry-After when given, else one token
  of the operation's rate (`x-amzn-RateLimit-Limit`, requests per second, as last
  answered; 5/s as documented until then).
- Processing report: header and `issues` (`messageId`, absent for a feed-level issue;
  `code`, `severity` ERROR/WARNING/INFO, `message`) read from the Listings Feed
  Processing Report schema v2 (as published by SDK mirrors of Amazon's schemas).
- Unconfirmed (not checked against a live account): the report's `summary` counts
  (`messagesProcessed`…), not read in this review: only a feed found after a lost
  answer relies on them, and without them that feed is not trusted and the chunk is
  sent again (safe, an upsert). Whether getFeeds lists feeds of other applications
  of the same seller: a lost createFeed is matched to the one unknown feed of this
  type created since 30 s before it was sent, checked against its report's message
  count, so a feed of another job of the same size in that window could still be
  taken for it, its report read for ours and items recorded as accepted that Amazon
  never received (unlikely: same seller, size and 30 s). How long feeds wait in
  Amazon's queue.
"""

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from connectors.amazon_feeds import FEEDS, ListingsFeeds
from connectors.base import (
    CHUNK_SIZE,
    ConnectorConfig,
    ItemOutcome,
    OutgoingProduct,
    PlatformAdapter,
    PriceLevel,
    RemoteProduct,
    StockLevel,
    register,
)
from connectors.http import Auth, PlatformError, PlatformHttp, Rate
from connectors.item_calls import default_wait, each_concurrently
from connectors.tokens import CachedToken, token_header

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
LISTINGS = "/listings/2021-08-01/items"
RATE_HEADER = "x-amzn-RateLimit-Limit"
TOKEN_HEADER = "x-amz-access-token"
DOCUMENTED_RATE = 5.0  # requests per second of the Listings Items operations
PAGE_SIZE = 20  # searchListingsItems' maximum
# From this many listings a push goes in a JSON_LISTINGS_FEED: below, per-SKU PUTs end
# within 100 s at 5/s with each outcome known at once, where a feed waits in Amazon's
# queue for minutes and spends one of the seller's 5 submissions per 5 minutes.
FEED_THRESHOLD = 500


@register
class AmazonAdapter(PlatformAdapter):
    platform = "amazon"
    # Listings Items: 5 requests a second, bursts of 10, per seller account.
    pace = Rate(per_second=DOCUMENTED_RATE, burst=10)
    # JSON_LISTINGS_FEED: 25,000 messages a feed since May 2025, 10,000 before; the
    # lower figure keeps documents of a few MB and reports sooner.
    chunk_size = 10_000
    # Stock and prices stay one PATCH per SKU.
    level_chunk_size = CHUNK_SIZE

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.base = (config.base_url or "https://sellingpartnerapi-eu.amazon.com").rstrip("/")
        options = config.options
        self.seller = str(options["seller_id"])
        self.marketplace = str(options["marketplace_id"])
        self.product_type = options.get("product_type", "PRODUCT")
        self.language = options.get("language_tag", "fr_FR")
        self.concurrency = int(options.get("concurrency", 5))
        self.rate = DOCUMENTED_RATE
        self.auth = token_header(CachedToken(self._fetch_token), TOKEN_HEADER)
        self.feed_threshold = int(options.get("feed_threshold", FEED_THRESHOLD))
        self.feeds = ListingsFeeds(self._request, config, http, self.seller, self.marketplace,
                                   self.language)  # fmt: skip

    async def _fetch_token(self) -> tuple[str, float]:
        credentials = self.config.credentials
        response = await self.http.request(
            "POST", self.config.options.get("token_url", LWA_TOKEN_URL),
            data={"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
                  "client_id": credentials["client_id"],
                  "client_secret": credentials["client_secret"]},
            idempotent=True,
        )  # fmt: skip
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in", 3600))

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        sent: list[Mapping[str, str]] = []

        async def auth(refused: Mapping[str, str] | None) -> Mapping[str, str]:
            sent.append(await self.auth(refused))
            return sent[-1]

        try:
            return await self._send(method, path, auth, **kwargs)
        except PlatformError as exc:
            if not _token_expired(exc):
                raise
        # The SP-API refuses an expired token with a 403, on which PlatformHttp renews
        # nothing: renewed here, unless another request's refusal already did it.
        await self.auth(sent[-1])
        return await self._send(method, path, self.auth, **kwargs)

    async def _send(self, method: str, path: str, auth: Auth, **kwargs: Any) -> Any:
        with default_wait(1 / self.rate):
            response = await self.http.request(
                method, self.base + path, headers={"Accept": "application/json"}, auth=auth,
                **kwargs,
            )  # fmt: skip
        if not path.startswith(FEEDS):  # the feeds' own rates, far slower, are paced apart
            self._note_rate(response)
        return response.json()

    def _note_rate(self, response: httpx.Response) -> None:
        try:
            rate = float(response.headers.get(RATE_HEADER, ""))
        except ValueError:
            return
        if rate > 0:
            self.rate = rate

    async def test(self) -> str:
        body = await self._request("GET", "/sellers/v1/marketplaceParticipations")
        for entry in body.get("payload", []):
            marketplace = entry.get("marketplace", {})
            if marketplace.get("id") == self.marketplace:
                return f"Amazon {marketplace.get('name') or self.marketplace}"
        raise PlatformError(f"le vendeur ne participe pas à la place de marché {self.marketplace}")

    def _item_path(self, sku: str) -> str:
        return f"{LISTINGS}/{quote(self.seller, safe='')}/{quote(sku, safe='')}"

    def _params(self) -> dict[str, str]:
        return {"marketplaceIds": self.marketplace, "issueLocale": self.language}

    def _localized(self, value: Any) -> list[dict[str, Any]]:
        return [{"value": value, "language_tag": self.language, "marketplace_id": self.marketplace}]

    def _offer(self, price: float, currency: str) -> list[dict[str, Any]]:
        return [{"marketplace_id": self.marketplace, "currency": currency,
                 "our_price": [{"schedule": [{"value_with_tax": price}]}]}]  # fmt: skip

    @staticmethod
    def _availability(quantity: int) -> list[dict[str, Any]]:
        return [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]

    def _attributes(self, product: OutgoingProduct) -> dict[str, Any]:
        mp = {"marketplace_id": self.marketplace}
        attributes: dict[str, Any] = {
            "item_name": self._localized(product.name),
            "condition_type": [{"value": "new_new", **mp}],
        }
        if product.description:
            attributes["product_description"] = self._localized(product.description)
        if product.brand:
            attributes["brand"] = self._localized(product.brand)
        if product.ean:
            attributes["externally_assigned_product_identifier"] = [
                {"type": "ean", "value": product.ean, **mp}
            ]
        if product.weight is not None:
            attributes["item_weight"] = [{"unit": "kilograms", "value": product.weight, **mp}]
        if product.price is not None:
            attributes["purchasable_offer"] = self._offer(product.price, self.config.currency)
        if product.stock is not None:
            attributes["fulfillment_availability"] = self._availability(product.stock)
        return attributes

    async def _submit(self, method: str, sku: str, body: dict[str, Any]) -> str:
        """PUT or PATCH one listing; an INVALID submission is that item's refusal. Both are
        safe to send again: a PUT replaces the listing of the SKU, a PATCH replaces
        attributes."""
        answer = await self._request(
            method, self._item_path(sku), params=self._params(),
            json={"productType": self.product_type, **body}, idempotent=True,
        )  # fmt: skip
        if answer.get("status") != "ACCEPTED":
            issues = [i for i in answer.get("issues", []) if i.get("severity") == "ERROR"]
            message = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in issues)
            raise PlatformError(message or f"soumission {answer.get('status')}")
        return sku

    async def _put(self, product: OutgoingProduct) -> str:
        body = {"requirements": "LISTING", "attributes": self._attributes(product)}
        return await self._submit("PUT", product.sku, body)

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        # Items left pending by an unfinished feed go back to it, whatever their number.
        skus = [p.sku for p in products]
        if len(products) < self.feed_threshold and not self.feeds.tracking(skus):
            return await each_concurrently(products, self._put, limit=self.concurrency)
        messages = [{"messageId": number, "sku": product.sku, "operationType": "UPDATE",
                     "productType": self.product_type, "requirements": "LISTING",
                     "attributes": self._attributes(product)}
                    for number, product in enumerate(products, 1)]  # fmt: skip
        return await self.feeds.push(products, messages)

    async def _patch(self, attribute: str, value: list[dict[str, Any]], sku: str) -> str:
        patch = {"op": "replace", "path": f"/attributes/{attribute}", "value": value}
        return await self._submit("PATCH", sku, {"patches": [patch]})

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        async def one(level: StockLevel) -> str:
            sku = level.external_id or level.sku
            value = self._availability(level.quantity)
            return await self._patch("fulfillment_availability", value, sku)

        return await each_concurrently(levels, one, limit=self.concurrency)

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        async def one(price: PriceLevel) -> str:
            value = self._offer(price.price, price.currency)
            return await self._patch("purchasable_offer", value, price.external_id or price.sku)

        return await each_concurrently(prices, one, limit=self.concurrency)

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        token: str | None = None
        search = partial(self._request, "GET", f"{LISTINGS}/{quote(self.seller, safe='')}")
        while True:
            params: dict[str, Any] = {
                "marketplaceIds": self.marketplace,
                "includedData": "summaries,attributes,offers,fulfillmentAvailability",
                "pageSize": PAGE_SIZE,
            }
            if token:
                params["pageToken"] = token
            body = await search(params=params)
            yield [_remote(item) for item in body.get("items", [])]
            token = (body.get("pagination") or {}).get("nextToken")
            if not token:
                return


def _token_expired(exc: PlatformError) -> bool:
    """The SP-API's answer to an expired access token: a 403 Unauthorized saying so."""
    if exc.status != 403:
        return False
    try:
        errors = json.loads(exc.body or "").get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any(e.get("code") == "Unauthorized" and "expired" in str(e.get("details", "")).lower()
               for e in errors)  # fmt: skip


def _first(attributes: dict[str, Any], name: str) -> Any:
    values = attributes.get(name) or []
    return values[0].get("value") if values else None


def _remote(item: dict[str, Any]) -> RemoteProduct:
    attributes = item.get("attributes") or {}
    summary = (item.get("summaries") or [{}])[0]
    offers = item.get("offers") or []
    availability = item.get("fulfillmentAvailability") or []
    eans = [i["value"] for i in attributes.get("externally_assigned_product_identifier") or []
            if i.get("type") == "ean"]  # fmt: skip
    return RemoteProduct(
        external_id=item["sku"],
        sku=item["sku"],
        ean=eans[0] if eans else None,
        name=summary.get("itemName") or _first(attributes, "item_name"),
        description=_first(attributes, "product_description"),
        brand=_first(attributes, "brand"),
        price=float(offers[0]["price"]["amount"]) if offers else None,
        stock=availability[0].get("quantity") if availability else None,
        is_active="BUYABLE" in (summary.get("status") or []),
    )
