"""Shopify Admin GraphQL API: X-Shopify-Access-Token, productSet (one aliased field per
product, 25 per request), productVariantsBulkUpdate for prices,
inventorySetQuantities for stock, cursor pagination (pageInfo), and cost-based
throttling (a THROTTLED error; extensions.cost says when enough points are back).

Checked against shopify.dev (GraphQL Admin API reference; "About Shopify API
versioning": a stable version each quarter, each supported at least twelve months,
an unsupported one served as the oldest supported). The version is option
`api_version`, by default the current stable one (2026-10 in December 2026); it must
be moved forward at least once a year.

Credentials: `access_token`, the token of an app created in the shop's admin (no more
such apps can be created since January 2026; theirs last until uninstalled), or
`client_id` and `client_secret` of an app created in the Dev Dashboard and installed
in the shop: a token asked for with the client credentials grant (POST
/admin/oauth/access_token, a form; "About client credentials" and "Using the client
credentials grant" on shopify.dev), which lasts 24 hours (`expires_in`), is asked for
again before then, and after a 401.

Exactly once: productSet upserts by `identifier` (Admin API 2025-04 and later): the
product's id once linked, else its handle, derived from the SKU, so that a request
whose answer was lost is simply sent again and updates what it created. Every call is
thus safe to repeat. Pacing follows the cost bucket: requests take their estimated
points from a bucket refilled at the standard plan's 100 points a second, and an
answer showing the bucket nearly empty holds the next request back."""

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
    split_linked,
)
from connectors.external_ids import handle_for
from connectors.http import Auth, Bucket, PlatformError, PlatformHttp, Rate
from connectors.tokens import ClientCredentials

TOKEN_HEADER = "X-Shopify-Access-Token"
# productSet's `identifier` needs 2025-04 or later.
API_VERSION = "2026-10"
PAGE_SIZE = 100
# A mutation field costs about 10 points and one request at most 1000: alias 25 products
# per request, well under the cap and the bucket of a standard plan.
ALIASES_PER_REQUEST = 25
FIELD_COST = 10  # what Shopify charges, about, for each aliased mutation field
DEFAULT_OPTION = {"optionName": "Title", "name": "Default Title"}

PRODUCTS_QUERY = """
query Products($first: Int!, $after: String) {
  products(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id title descriptionHtml vendor status
      variants(first: 1) { nodes { sku barcode price inventoryQuantity } }
    }
  }
}"""

VARIANTS_QUERY = """
query Variants($ids: [ID!]!) {
  locations(first: 1) { nodes { id } }
  nodes(ids: $ids) {
    ... on Product { id variants(first: 1) { nodes { id inventoryItem { id } } } }
  }
}"""

SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) { userErrors { field message code } }
}"""


def _throttle_delay(body: dict[str, Any]) -> float | None:
    """Seconds until the bucket holds the points the refused query asked for."""
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        return max(0.0, missing / float(status["restoreRate"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def follow_cost_bucket(response: httpx.Response, bucket: Bucket) -> None:
    """Follow the shop's own bucket (its size and restore rate depend on the plan)."""
    try:
        body = response.json()
        status = body["extensions"]["cost"]["throttleStatus"]
        available, restore = float(status["currentlyAvailable"]), float(status["restoreRate"])
        size = float(status["maximumAvailable"])
    except (ValueError, KeyError, TypeError):
        return
    if restore > 0:
        bucket.mirror(available, restore, size)


def _throttled(response: httpx.Response) -> None:
    """Shopify refuses a query over budget with a 200 and a THROTTLED error: it was
    not run, so it is retried like a 429."""
    body = response.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and any(
        (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors
    ):
        raise PlatformError("Shopify : THROTTLED", status=429, transient=True,
                            retry_after=_throttle_delay(body))  # fmt: skip


def _user_errors(payload: dict[str, Any] | None) -> str | None:
    errors = (payload or {}).get("userErrors") or []
    return "; ".join(str(e.get("message")) for e in errors) or None


@register
class ShopifyAdapter(PlatformAdapter):
    platform = "shopify"
    # In cost points: the standard plan's restore rate and bucket size.
    pace = Rate(per_second=100, burst=1000)

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        credentials = config.credentials
        # A token granted to the app's client credentials, or (None) the admin app's own.
        self.granted: Auth | None = None
        if not credentials.get("access_token") and credentials.get("client_id"):
            self.granted = ClientCredentials(
                http, f"{(config.base_url or '').rstrip('/')}/admin/oauth/access_token",
                credentials["client_id"], credentials["client_secret"],
                basic_auth=False, header=TOKEN_HEADER, prefix="",
            ).headers  # fmt: skip

    def _token(self) -> dict[str, str]:
        """The admin app's token, sent as it is (a 401 then is final)."""
        if self.granted is not None:
            return {}
        return {TOKEN_HEADER: self.config.credentials.get("access_token", "")}

    async def _graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, cost: float = FIELD_COST
    ) -> dict[str, Any]:
        if not self.config.base_url:
            raise PlatformError("Shopify : base_url (https://<boutique>.myshopify.com) manquante")
        version = self.config.options.get("api_version", API_VERSION)
        response = await self.http.request(
            "POST", f"{self.config.base_url.rstrip('/')}/admin/api/{version}/graphql.json",
            headers=self._token(), auth=self.granted,
            json={"query": query, "variables": variables or {}},
            idempotent=True, check=_throttled, signal=follow_cost_bucket, cost=cost,
        )  # fmt: skip
        body: dict[str, Any] = response.json()
        errors = body.get("errors") or []
        if errors:
            raise PlatformError("Shopify : " + "; ".join(str(e.get("message")) for e in errors))
        data: dict[str, Any] = body.get("data") or {}
        return data

    async def test(self) -> str:
        return str((await self._graphql("{ shop { name } }"))["shop"]["name"])

    @staticmethod
    def _input(p: OutgoingProduct) -> dict[str, Any]:
        variant: dict[str, Any] = {
            "optionValues": [DEFAULT_OPTION],
            "inventoryItem": {"sku": p.sku, "tracked": p.stock is not None},
        }
        if p.ean:
            variant["barcode"] = p.ean
        if p.price is not None:
            variant["price"] = f"{p.price:.2f}"
        if p.weight is not None:
            variant["inventoryItem"]["measurement"] = {
                "weight": {"value": p.weight, "unit": "KILOGRAMS"}
            }
        product: dict[str, Any] = {
            "title": p.name, "descriptionHtml": p.description or "", "vendor": p.brand or "",
            "handle": handle_for(p.sku),
            "status": "ACTIVE" if p.is_active else "DRAFT",
            "productOptions": [{"name": "Title", "values": [{"name": "Default Title"}]}],
            "variants": [variant],
        }  # fmt: skip
        return product

    @staticmethod
    def _identifier(p: OutgoingProduct) -> dict[str, str]:
        return {"id": p.external_id} if p.external_id else {"handle": handle_for(p.sku)}

    async def _aliased(
        self, operation: str, arguments: str, field: str, inputs: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Run `field` once per input as aliased fields of one mutation (`#` stands for the
        alias number), ALIASES_PER_REQUEST at a time; the payloads, in input order."""
        payloads: list[dict[str, Any]] = []
        for start in range(0, len(inputs), ALIASES_PER_REQUEST):
            group = inputs[start : start + ALIASES_PER_REQUEST]
            params = ", ".join(arguments.replace("#", str(i)) for i in range(len(group)))
            fields = " ".join(f"p{i}: " + field.replace("#", str(i)) for i in range(len(group)))
            variables = {
                name.replace("#", str(i)): value
                for i, values in enumerate(group)
                for name, value in values.items()
            }
            data = await self._graphql(
                f"mutation {operation}({params}) {{ {fields} }}", variables,
                cost=FIELD_COST * len(group),
            )  # fmt: skip
            payloads.extend(data.get(f"p{i}") or {} for i in range(len(group)))
        return payloads

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        payloads = await self._aliased(
            "PushProducts", "$p#: ProductSetInput!, $i#: ProductSetIdentifiers",
            "productSet(synchronous: true, identifier: $i#, input: $p#) "
            "{ product { id } userErrors { field message code } }",
            [{"p#": self._input(p), "i#": self._identifier(p)} for p in products],
        )  # fmt: skip
        outcomes = []
        for p, payload in zip(products, payloads, strict=True):
            error = _user_errors(payload)
            product = payload.get("product") or {}
            if error or not product.get("id"):
                outcomes.append(ItemOutcome(p.product_id, ok=False, error=error or "sans réponse"))
            else:
                outcomes.append(ItemOutcome(p.product_id, ok=True, external_id=product["id"]))
        return outcomes

    async def _resolve(
        self, items: Sequence[StockLevel] | Sequence[PriceLevel]
    ) -> tuple[str | None, dict[str, dict[str, Any]], list[Any], dict[Any, ItemOutcome]]:
        """The location to stock at, each linked product's first variant (id, inventory
        item), the items that can be sent, and an error outcome for each of the others."""
        linked, outcomes = split_linked(items)
        if not linked:
            return None, {}, [], outcomes
        data = await self._graphql(VARIANTS_QUERY, {"ids": [i.external_id for i in linked]})
        location = self.config.options.get("location_id") or next(
            (n["id"] for n in data.get("locations", {}).get("nodes", [])), None
        )
        variants = {
            node["id"]: node["variants"]["nodes"][0]
            for node in data.get("nodes") or []
            if node and node.get("variants", {}).get("nodes")
        }
        for item in linked:
            if item.external_id not in variants:
                outcomes[item.product_id] = ItemOutcome(item.product_id, False, error="introuvable")
        return location, variants, [i for i in linked if i.external_id in variants], outcomes

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        location, variants, sendable, outcomes = await self._resolve(levels)
        if sendable:
            quantities = [
                {"inventoryItemId": variants[s.external_id]["inventoryItem"]["id"],
                 "locationId": location, "quantity": s.quantity}
                for s in sendable
            ]  # fmt: skip
            data = await self._graphql(SET_QUANTITIES, {"input": {
                "name": "available", "reason": "correction", "ignoreCompareQuantity": True,
                "quantities": quantities,
            }})  # fmt: skip
            failed = self._failed_indexes(data.get("inventorySetQuantities"))
            for index, s in enumerate(sendable):
                error = failed.get(index, failed.get(-1))
                outcomes[s.product_id] = ItemOutcome(
                    s.product_id, error is None, s.external_id, error
                )
        return [outcomes[s.product_id] for s in levels]

    @staticmethod
    def _failed_indexes(payload: dict[str, Any] | None) -> dict[int, str]:
        """userErrors point at ["input", "quantities", "<index>", …]; -1 means all of them."""
        failed: dict[int, str] = {}
        for error in (payload or {}).get("userErrors") or []:
            path = error.get("field") or []
            index = int(path[2]) if len(path) > 2 and str(path[2]).isdigit() else -1
            failed[index] = str(error.get("message"))
        return failed

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        _location, variants, sendable, outcomes = await self._resolve(prices)
        payloads = await self._aliased(
            "PushPrices", "$id#: ID!, $v#: [ProductVariantsBulkInput!]!",
            "productVariantsBulkUpdate(productId: $id#, variants: $v#) "
            "{ userErrors { field message } }",
            [{"id#": p.external_id,
              "v#": [{"id": variants[p.external_id]["id"], "price": f"{p.price:.2f}"}]}
             for p in sendable],
        )  # fmt: skip
        for p, payload in zip(sendable, payloads, strict=True):
            error = _user_errors(payload)
            outcomes[p.product_id] = ItemOutcome(p.product_id, error is None, p.external_id, error)
        return [outcomes[p.product_id] for p in prices]

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        after: str | None = None
        while True:
            data = await self._graphql(PRODUCTS_QUERY, {"first": PAGE_SIZE, "after": after})
            connection = data["products"]
            yield [self._remote(node) for node in connection["nodes"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    @staticmethod
    def _remote(node: dict[str, Any]) -> RemoteProduct:
        variant = (node.get("variants", {}).get("nodes") or [{}])[0]
        price = variant.get("price")
        return RemoteProduct(
            external_id=node["id"], sku=variant.get("sku") or None,
            ean=variant.get("barcode") or None, name=node.get("title"),
            description=node.get("descriptionHtml") or None, brand=node.get("vendor") or None,
            price=float(price) if price not in (None, "") else None,
            stock=variant.get("inventoryQuantity"), is_active=node.get("status") == "ACTIVE",
        )  # fmt: skip
