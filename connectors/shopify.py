"""Shopify Admin GraphQL API: X-Shopify-Access-Token, productSet (one aliased field per
product, one request per chunk), productVariantsBulkUpdate for prices,
inventorySetQuantities for stock, cursor pagination (pageInfo), and cost-based
throttling (a THROTTLED error; extensions.cost says when enough points are back)."""

from collections.abc import AsyncIterator, Sequence
from typing import Any

from connectors.base import (
    ItemOutcome,
    OutgoingProduct,
    PlatformAdapter,
    PriceLevel,
    RemoteProduct,
    StockLevel,
    register,
    split_linked,
)
from connectors.http import PlatformError

API_VERSION = "2025-01"
PAGE_SIZE = 100
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


def _user_errors(payload: dict[str, Any] | None) -> str | None:
    errors = (payload or {}).get("userErrors") or []
    return "; ".join(str(e.get("message")) for e in errors) or None


@register
class ShopifyAdapter(PlatformAdapter):
    platform = "shopify"

    async def _graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.config.base_url:
            raise PlatformError("Shopify : base_url (https://<boutique>.myshopify.com) manquante")
        version = self.config.options.get("api_version", API_VERSION)
        response = await self.http.request(
            "POST", f"{self.config.base_url.rstrip('/')}/admin/api/{version}/graphql.json",
            headers={"X-Shopify-Access-Token": self.config.credentials.get("access_token", "")},
            json={"query": query, "variables": variables or {}},
        )  # fmt: skip
        body: dict[str, Any] = response.json()
        errors = body.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            raise PlatformError("Shopify : THROTTLED", status=429, transient=True,
                                retry_after=_throttle_delay(body))  # fmt: skip
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
            "status": "ACTIVE" if p.is_active else "DRAFT",
            "productOptions": [{"name": "Title", "values": [{"name": "Default Title"}]}],
            "variants": [variant],
        }  # fmt: skip
        if p.external_id:
            product["id"] = p.external_id
        return product

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        # productSet takes one product: alias it once per product, one request per chunk.
        params = ", ".join(f"$p{i}: ProductSetInput!" for i in range(len(products)))
        fields = " ".join(
            f"p{i}: productSet(synchronous: true, input: $p{i}) "
            "{ product { id } userErrors { field message code } }"
            for i in range(len(products))
        )
        data = await self._graphql(
            f"mutation PushProducts({params}) {{ {fields} }}",
            {f"p{i}": self._input(p) for i, p in enumerate(products)},
        )
        outcomes = []
        for i, p in enumerate(products):
            payload = data.get(f"p{i}") or {}
            error = _user_errors(payload)
            product = payload.get("product") or {}
            if error or not product.get("id"):
                outcomes.append(ItemOutcome(p.product_id, ok=False, error=error or "sans réponse"))
            else:
                outcomes.append(ItemOutcome(p.product_id, ok=True, external_id=product["id"]))
        return outcomes

    async def _variants(
        self, product_ids: list[str]
    ) -> tuple[str | None, dict[str, dict[str, Any]]]:
        """The location to stock at, and each product's first variant (id, inventory item)."""
        data = await self._graphql(VARIANTS_QUERY, {"ids": product_ids})
        location = self.config.options.get("location_id") or next(
            (n["id"] for n in data.get("locations", {}).get("nodes", [])), None
        )
        variants = {
            node["id"]: node["variants"]["nodes"][0]
            for node in data.get("nodes") or []
            if node and node.get("variants", {}).get("nodes")
        }
        return location, variants

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        linked, outcomes = split_linked(levels)
        if linked:
            location, variants = await self._variants([s.external_id for s in linked])
            sendable = [s for s in linked if s.external_id in variants]
            for s in linked:
                if s.external_id not in variants:
                    outcomes[s.product_id] = ItemOutcome(s.product_id, False, error="introuvable")
            quantities = [
                {
                    "inventoryItemId": variants[s.external_id]["inventoryItem"]["id"],
                    "locationId": location,
                    "quantity": s.quantity,
                }
                for s in sendable
            ]
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
        linked, outcomes = split_linked(prices)
        if linked:
            _location, variants = await self._variants([p.external_id for p in linked])
            sendable = [p for p in linked if p.external_id in variants]
            for p in linked:
                if p.external_id not in variants:
                    outcomes[p.product_id] = ItemOutcome(p.product_id, False, error="introuvable")
            params = ", ".join(
                f"$id{i}: ID!, $v{i}: [ProductVariantsBulkInput!]!" for i in range(len(sendable))
            )
            fields = " ".join(
                f"p{i}: productVariantsBulkUpdate(productId: $id{i}, variants: $v{i}) "
                "{ userErrors { field message } }"
                for i in range(len(sendable))
            )
            variables: dict[str, Any] = {}
            for i, p in enumerate(sendable):
                variables[f"id{i}"] = p.external_id
                variables[f"v{i}"] = [
                    {"id": variants[p.external_id or ""]["id"], "price": f"{p.price:.2f}"}
                ]
            data = await self._graphql(f"mutation PushPrices({params}) {{ {fields} }}", variables)
            for i, p in enumerate(sendable):
                error = _user_errors(data.get(f"p{i}"))
                outcomes[p.product_id] = ItemOutcome(
                    p.product_id, error is None, p.external_id, error
                )
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
