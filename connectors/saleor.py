"""Saleor, through its GraphQL API (Saleor 3.x, `POST {base}/graphql/`).

Checked against Saleor's API reference (docs.saleor.io/api-reference: productBulkCreate,
productUpdate, productChannelListingUpdate, productVariantUpdate,
productVariantStocksUpdate, productVariantChannelListingUpdate, products).

- Auth: an app token as a bearer token (credential `token`; it does not expire), or a
  staff user's `email`/`password` exchanged with `tokenCreate` for a JWT access token
  (5 minutes by default), renewed before its `exp` and again by a new `tokenCreate`
  when Saleor refuses it: Saleor answers an expired JWT with a 200 whose error code
  is ExpiredSignatureError, before running anything, so the request is sent again.
- Test: `query { shop { name } }`.
- Products: new products in one `productBulkCreate` (`errorPolicy:
  REJECT_FAILED_ROWS`, so one bad row does not sink the others; each result carries
  its product or its errors, in input order): product type (option `product_type_id`),
  name, EditorJS description, channel listing (option `channel_id`), one variant with
  SKU, weight, stock in the warehouse of option `warehouse_id`, price, and the EAN in
  the plain-text attribute of option `ean_attribute_id` when given (Saleor has no GTIN
  field of its own). Linked products (external id "product:variant") are updated in a
  single request of aliased mutations, since Saleor splits a product over several:
  `productUpdate` (name, description), `productChannelListingUpdate` (published,
  visible, available for purchase: our active flag), `productVariantUpdate` (SKU,
  weight, EAN attribute), `productVariantStocksUpdate` and
  `productVariantChannelListingUpdate` (stock, price); a product fails when any fails.
- Pull: `products(first:, after:, channel:)` following `pageInfo.endCursor` while
  `hasNextPage`; one remote product per variant.
- Stock: `productVariantStocksUpdate` (quantity in the warehouse) and prices:
  `productVariantChannelListingUpdate` (price in the channel), aliased per variant in
  one request each time.
- Errors: mutation errors come back in the payload (`errors { field message code }`)
  and become the item's outcome; request-level GraphQL errors fail the call.
  Saleor has no rate limiting of its own; a 429 (Retry-After) from its proxy is transient.
- Exactly once: `productBulkCreate` is the only request that is not safe to repeat;
  after a lost answer the products are found by variant SKU
  (`productVariants(filter: {sku: [...]})`, SKUs being unique) before only the
  missing ones are created again.
"""

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
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
from connectors.external_ids import pair_id, split_pair
from connectors.http import PlatformError, PlatformHttp
from connectors.item_calls import Addressed, for_variants
from connectors.tokens import CachedToken, bearer, jwt_lifetime

PAGE_SIZE = 100
JWT_LIFETIME = 300.0  # Saleor's default access token lifetime, when the JWT has no `exp`
ERRORS = "errors { field message code }"
# The variant mutations for stock and price, with their arguments' types.
STOCKS = ("productVariantStocksUpdate", {"variantId": "ID!", "stocks": "[StockInput!]!"})
LISTING = (
    "productVariantChannelListingUpdate",
    {"id": "ID!", "input": "[ProductVariantChannelListingAddInput!]!"},
)

BULK_CREATE = """
mutation ProductBulkCreate($products: [ProductBulkCreateInput!]!) {
  productBulkCreate(products: $products, errorPolicy: REJECT_FAILED_ROWS) {
    results { product { id variants { id sku } } errors { path message code } }
    errors { path message code }
  }
}"""

TOKEN_CREATE = """
mutation TokenCreate($email: String!, $password: String!) {
  tokenCreate(email: $email, password: $password) { token errors { field message code } }
}"""

VARIANTS_BY_SKU = """
query VariantsBySku($first: Int!, $skus: [String!]) {
  productVariants(first: $first, filter: {sku: $skus}) {
    edges { node { id sku product { id } } }
  }
}"""

PRODUCTS = """
query Products($first: Int!, $after: String, $channel: String) {
  products(first: $first, after: $after, channel: $channel) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id name description
      variants {
        id sku
        weight { value unit }
        stocks { quantity }
        channelListings { channel { slug } price { amount currency } }
      }
    } }
  }
}"""


def editorjs(text: str | None) -> str | None:
    """Saleor stores rich text as EditorJS JSON."""
    if not text:
        return None
    return json.dumps({"blocks": [{"type": "paragraph", "data": {"text": text}}]})


def plain_text(description: str | None) -> str | None:
    if not description:
        return None
    try:
        blocks = json.loads(description).get("blocks", [])
    except (ValueError, AttributeError):
        return description
    return "\n".join(str(b.get("data", {}).get("text", "")) for b in blocks) or None


# One mutation field of a document: its key (the field is aliased "m{key}" and its
# variables are suffixed with the key), the mutation, its arguments' GraphQL types by
# name, the selection, and the arguments' values.
Call = tuple[str, str, dict[str, str], str, dict[str, Any]]


def mutations(calls: Sequence[Call]) -> tuple[str, dict[str, Any]]:
    """One document running every call (Saleor runs a document's mutations in order)."""
    declarations, fields, variables = [], [], {}
    for key, mutation, arguments, selection, values in calls:
        passed = []
        for name, kind in arguments.items():
            declarations.append(f"${name}{key}: {kind}")
            passed.append(f"{name}: ${name}{key}")
            variables[f"{name}{key}"] = values[name]
        fields.append(f"m{key}: {mutation}({', '.join(passed)}) {{ {selection} }}")
    return f"mutation ({', '.join(declarations)}) {{ {' '.join(fields)} }}", variables


def aliased(mutation: str, arguments: dict[str, str], selection: str,
            inputs: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """One document running `mutation` once per input, as fields m0, m1…"""
    return mutations(
        [(str(n), mutation, arguments, selection, values) for n, values in enumerate(inputs)]
    )


def _message(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{e.get('field') or e.get('path') or ''}: {e.get('message') or e.get('code')}".lstrip(": ")
        for e in errors
    )


@register
class SaleorAdapter(PlatformAdapter):
    platform = "saleor"

    def __init__(self, config: ConnectorConfig, http: PlatformHttp) -> None:
        super().__init__(config, http)
        self.url = (config.base_url or "").rstrip("/") + "/graphql/"
        self.options = config.options
        self.jwt = bearer(CachedToken(self._token_create))

    async def _token_create(self) -> tuple[str, float]:
        credentials = self.config.credentials
        response = await self.http.request(
            "POST", self.url, idempotent=True, json={"query": TOKEN_CREATE, "variables": {
                "email": credentials["email"], "password": credentials["password"]}},
        )  # fmt: skip
        created = response.json()["data"]["tokenCreate"]
        if not created.get("token"):
            raise PlatformError(f"Saleor : {_message(created.get('errors') or [])}", status=401)
        token = str(created["token"])
        return token, jwt_lifetime(token, JWT_LIFETIME)

    async def _authorization(self, refused: Mapping[str, str] | None) -> Mapping[str, str]:
        if token := self.config.credentials.get("token"):
            return {"Authorization": f"Bearer {token}"}
        return await self.jwt(refused)

    async def _graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, idempotent: bool = True
    ) -> Any:
        """Queries, and mutations that set values, may be repeated; creates may not."""
        response = await self.http.request(
            "POST", self.url, json={"query": query, "variables": variables or {}},
            auth=self._authorization, check=_expired, idempotent=idempotent,
        )  # fmt: skip
        body = response.json()
        if body.get("errors"):
            raise PlatformError(f"Saleor : {_message(body['errors'])}", status=response.status_code)
        return body["data"]

    async def test(self) -> str:
        return str((await self._graphql("query { shop { name } }"))["shop"]["name"])

    def _create_input(self, product: OutgoingProduct) -> dict[str, Any]:
        channel = self.options["channel_id"]
        variant: dict[str, Any] = {"sku": product.sku, "name": product.name, "attributes": [],
                                   "trackInventory": True,
                                   "stocks": [{"warehouse": self.options["warehouse_id"],
                                               "quantity": product.stock or 0}]}  # fmt: skip
        if product.price is not None:
            variant["channelListings"] = [{"channelId": channel, "price": product.price}]
        if product.weight is not None:
            variant["weight"] = product.weight
        if product.ean and (attribute := self.options.get("ean_attribute_id")):
            variant["attributes"] = [{"id": attribute, "plainText": product.ean}]
        return {
            "productType": self.options["product_type_id"],
            "name": product.name,
            "description": editorjs(product.description),
            "attributes": [],
            "externalReference": str(product.product_id),
            "channelListings": [{"channelId": channel, "isPublished": product.is_active,
                                 "visibleInListings": product.is_active,
                                 "isAvailableForPurchase": product.is_active}],
            "variants": [variant],
        }  # fmt: skip

    async def push_products(self, products: Sequence[OutgoingProduct]) -> list[ItemOutcome]:
        outcomes: dict[int, ItemOutcome] = {}
        new = [(n, p) for n, p in enumerate(products) if not p.external_id]
        linked = [(n, p) for n, p in enumerate(products) if p.external_id]
        if new:
            data = await self._graphql(
                BULK_CREATE, {"products": [self._create_input(p) for _, p in new]},
                idempotent=False,
            )  # fmt: skip
            payload = data["productBulkCreate"]
            results = payload.get("results") or []
            for position, (n, product) in enumerate(new):
                result = results[position] if position < len(results) else {}
                created = result.get("product")
                if created and not result.get("errors"):
                    variant = created["variants"][0]["id"] if created.get("variants") else ""
                    external_id = pair_id(created["id"], variant)
                    outcomes[n] = ItemOutcome(product.product_id, ok=True, external_id=external_id)
                else:
                    error = (
                        _message(result.get("errors") or payload.get("errors") or []) or "refusé"
                    )
                    outcomes[n] = ItemOutcome(product.product_id, ok=False, error=error)
        if linked:
            calls = [self._update_calls(position, p) for position, (_, p) in enumerate(linked)]
            data = await self._graphql(*mutations([c for cs in calls for c in cs]))
            for (n, product), product_calls in zip(linked, calls, strict=True):
                errors = [
                    e for key, *_ in product_calls for e in data[f"m{key}"].get("errors") or []
                ]
                outcomes[n] = (
                    ItemOutcome(product.product_id, ok=False, error=_message(errors))
                    if errors
                    else ItemOutcome(product.product_id, ok=True, external_id=product.external_id)
                )
        return [outcomes[n] for n in range(len(products))]

    def _update_calls(self, position: int, product: OutgoingProduct) -> list[Call]:
        """Everything a linked product's push changes, as Saleor splits it: the product
        (name, description), its channel listing (active), its variant (SKU, weight,
        EAN attribute), the variant's stock in the warehouse and its price in the channel."""
        product_id, variant_id = split_pair(product.external_id or "")
        channel = self.options["channel_id"]
        active = product.is_active
        calls: list[Call] = [
            (f"{position}_p", "productUpdate", {"id": "ID!", "input": "ProductInput!"},
             f"product {{ id }} {ERRORS}",
             {"id": product_id,
              "input": {"name": product.name, "description": editorjs(product.description)}}),
            (f"{position}_l", "productChannelListingUpdate",
             {"id": "ID!", "input": "ProductChannelListingUpdateInput!"},
             f"product {{ id }} {ERRORS}",
             {"id": product_id, "input": {"updateChannels": [
                 {"channelId": channel, "isPublished": active, "visibleInListings": active,
                  "isAvailableForPurchase": active}]}}),
        ]  # fmt: skip
        if not variant_id:
            return calls
        variant: dict[str, Any] = {"sku": product.sku}
        if product.weight is not None:
            variant["weight"] = product.weight
        if product.ean and (attribute := self.options.get("ean_attribute_id")):
            variant["attributes"] = [{"id": attribute, "plainText": product.ean}]
        selection = f"productVariant {{ id }} {ERRORS}"
        calls.append((f"{position}_v", "productVariantUpdate",
                      {"id": "ID!", "input": "ProductVariantInput!"}, selection,
                      {"id": variant_id, "input": variant}))  # fmt: skip
        if product.stock is not None:
            calls.append((f"{position}_s", STOCKS[0], STOCKS[1], selection,
                          self._stock_values(product.stock, variant_id)))  # fmt: skip
        if product.price is not None:
            calls.append((f"{position}_c", LISTING[0], LISTING[1], f"variant {{ id }} {ERRORS}",
                          self._price_values(product.price, variant_id)))  # fmt: skip
        return calls

    def _stock_values(self, quantity: int, variant: str) -> dict[str, Any]:
        stock = {"warehouse": self.options["warehouse_id"], "quantity": quantity}
        return {"variantId": variant, "stocks": [stock]}

    def _price_values(self, price: float, variant: str) -> dict[str, Any]:
        return {"id": variant, "input": [{"channelId": self.options["channel_id"], "price": price}]}

    async def find_existing(self, products: Sequence[OutgoingProduct]) -> dict[Any, str]:
        wanted = {p.sku: p.product_id for p in products}
        found: dict[Any, str] = {}
        skus = list(wanted)
        for start in range(0, len(skus), PAGE_SIZE):
            batch = skus[start : start + PAGE_SIZE]
            data = await self._graphql(VARIANTS_BY_SKU, {"first": PAGE_SIZE, "skus": batch})
            for edge in data["productVariants"]["edges"]:
                node = edge["node"]
                if node.get("sku") in wanted:
                    found[wanted[node["sku"]]] = pair_id(node["product"]["id"], node["id"])
        return found

    async def pull_products(self) -> AsyncIterator[list[RemoteProduct]]:
        channel = self.options.get("channel_slug") or self.config.channel
        after: str | None = None
        while True:
            data = await self._graphql(
                PRODUCTS, {"first": PAGE_SIZE, "after": after, "channel": channel}
            )
            connection = data["products"]
            nodes = [edge["node"] for edge in connection["edges"]]
            yield [_remote(node, variant, channel)
                   for node in nodes for variant in node.get("variants") or []]  # fmt: skip
            page = connection["pageInfo"]
            if not page["hasNextPage"]:
                return
            after = page["endCursor"]

    async def _per_variant(
        self, items: Sequence[StockLevel | PriceLevel], mutation: str,
        arguments: dict[str, str], selection: str,
        values: Callable[[Any, str], dict[str, Any]],
    ) -> list[ItemOutcome]:  # fmt: skip
        """Run `mutation` for each item linked to a variant, aliased in one request."""

        async def send(linked: list[Addressed[Any]]) -> list[ItemOutcome]:
            inputs = [values(item, variant) for item, _, variant in linked]
            data = await self._graphql(*aliased(mutation, arguments, selection, inputs))
            return [_outcome(item.product_id, data[f"m{n}"], item.external_id)
                    for n, (item, _, _) in enumerate(linked)]  # fmt: skip

        return await for_variants(items, send)

    async def push_stock(self, levels: Sequence[StockLevel]) -> list[ItemOutcome]:
        return await self._per_variant(
            levels, STOCKS[0], STOCKS[1], f"productVariant {{ id }} {ERRORS}",
            lambda level, variant: self._stock_values(level.quantity, variant),
        )  # fmt: skip

    async def push_prices(self, prices: Sequence[PriceLevel]) -> list[ItemOutcome]:
        return await self._per_variant(
            prices, LISTING[0], LISTING[1], f"variant {{ id }} {ERRORS}",
            lambda price, variant: self._price_values(price.price, variant),
        )  # fmt: skip


def _expired(response: httpx.Response) -> None:
    """Saleor's answer to an expired JWT, a 200, made the 401 that renews the token."""
    errors = response.json().get("errors") or []
    if any((e.get("extensions") or {}).get("exception", {}).get("code") == "ExpiredSignatureError"
           for e in errors):  # fmt: skip
        raise PlatformError("Saleor : jeton expiré", status=401)


def _outcome(product_id: Any, payload: dict[str, Any], external_id: str | None) -> ItemOutcome:
    if payload.get("errors"):
        return ItemOutcome(product_id, ok=False, error=_message(payload["errors"]))
    return ItemOutcome(product_id, ok=True, external_id=external_id)


def _remote(node: dict[str, Any], variant: dict[str, Any], channel: str | None) -> RemoteProduct:
    listings = [c for c in variant.get("channelListings") or []
                if channel is None or c["channel"]["slug"] == channel]  # fmt: skip
    price = listings[0].get("price") if listings else None
    weight = variant.get("weight") or {}
    return RemoteProduct(
        external_id=pair_id(node["id"], variant["id"]),
        sku=variant.get("sku"),
        name=node.get("name"),
        description=plain_text(node.get("description")),
        price=float(price["amount"]) if price else None,
        stock=sum(s.get("quantity", 0) for s in variant.get("stocks") or []),
        weight=weight.get("value"),
    )
