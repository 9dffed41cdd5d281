"""Fakes of the four platforms' APIs, served on loopback, shaped from their public docs:
paths, auth headers, request and response bodies, pagination and rate-limit signals.

Each fake keeps every product created as a separate record (as the platforms do: a
create sent twice makes two products, or is refused where the platform enforces
unique SKUs), counts the product write requests it receives, and can be told to
answer the next requests with an error (a 429 with its platform's wait signal, a
5xx, a 400). Faults that happen after a write is committed come from tests.connectors.fakes.faults.
"""

import base64
import itertools
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "secret-token-123"
WOO_KEY, WOO_SECRET = "ck_test", "cs_test"
MAGENTO_ADMIN, MAGENTO_PASSWORD = "pim-admin", "s3cret-admin"
# A Dev Dashboard app's client credentials, installed in the fake shop.
SHOPIFY_CLIENT = {"client_id": "shopify-client-id", "client_secret": "shpss_client-secret"}


@dataclass
class Remote:
    id: str
    sku: str
    name: str
    ean: str | None = None
    price: float | None = None
    stock: int | None = None
    active: bool = True
    handle: str | None = None


@dataclass
class StoreFake:
    """What every fake shares: the catalog, the request log, errors to answer next."""

    products: dict[str, Remote] = field(default_factory=dict)  # by platform id
    writes: int = 0  # product write requests (creates and updates)
    requests: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    # An error to answer to the n-th request (1-based), whatever it is.
    errors_at: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: itertools.count(1001))
    creates: list[str] = field(default_factory=list)  # the SKU of every create processed
    # How this platform says "slow down": status and headers of the answer.
    throttle: ClassVar[tuple[int, dict[str, str]]] = (429, {"Retry-After": "1"})

    def app(self) -> Starlette:
        raise NotImplementedError

    def connector(self, url: str) -> dict[str, Any]:
        """The connector fields (platform, base_url, credentials) that reach this fake."""
        raise NotImplementedError

    def by_sku(self) -> dict[str, Remote]:
        return {p.sku: p for p in self.products.values()}

    def seed(self, count: int, prefix: str = "REMOTE") -> None:
        for i in range(count):
            pid = self.new_id()
            self.products[pid] = Remote(pid, f"{prefix}-{i}", f"Remote {i}", price=10.0 + i)

    def new_id(self) -> str:
        return str(next(self.ids))

    def pending_error(self) -> Response | None:
        scheduled = self.errors_at.pop(len(self.requests), None)
        if scheduled is None and not self.errors:
            return None
        status, headers = scheduled or self.errors.pop(0)
        return JSONResponse({"message": f"error {status}"}, status_code=status, headers=headers)

    def create(self, sku: str, **values: Any) -> Remote:
        """A new product, whatever already exists with that SKU."""
        created = Remote(self.new_id(), sku, values.get("name") or sku)
        self.products[created.id] = created
        self.creates.append(sku)
        return self.update(created.id, **values)

    def update(self, pid: str, **values: Any) -> Remote:
        current = self.products[pid]
        for name, value in values.items():
            if value is not None:
                setattr(current, name, value)
        return current

    def upsert_by_sku(self, sku: str, **values: Any) -> Remote:
        """For platforms whose writes are upserts by SKU (Magento)."""
        current = self.by_sku().get(sku)
        return self.update(current.id, **values) if current else self.create(sku, **values)


def _unauthorized() -> JSONResponse:
    return JSONResponse({"code": "unauthorized", "message": "bad credentials"}, status_code=401)


# --- WooCommerce REST v3 -------------------------------------------------------------


class WooFake(StoreFake):
    def app(self) -> Starlette:
        async def guard(request: Request) -> Response | None:
            self.requests.append((request.method, request.url.path))
            expected = base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return _unauthorized()
            return self.pending_error()

        async def system_status(request: Request) -> Response:
            return await guard(request) or JSONResponse(
                {"environment": {"site_url": "https://shop.example", "version": "9.4.0"}}
            )

        def out(p: Remote) -> dict[str, Any]:
            return {"id": int(p.id), "name": p.name, "sku": p.sku, "global_unique_id": p.ean or "",
                    "regular_price": "" if p.price is None else f"{p.price:.2f}",
                    "stock_quantity": p.stock, "status": "publish" if p.active else "draft",
                    "description": "", "weight": ""}  # fmt: skip

        def values(body: dict[str, Any]) -> dict[str, Any]:
            return {"name": body.get("name"), "ean": body.get("global_unique_id"),
                    "price": float(body["regular_price"]) if body.get("regular_price") else None,
                    "stock": body.get("stock_quantity")}  # fmt: skip

        def create(body: dict[str, Any]) -> dict[str, Any]:
            # WooCommerce refuses a SKU that another product already has.
            if body.get("sku") in self.by_sku():
                return {"id": 0, "error": {"code": "product_invalid_sku", "data": {"status": 400},
                                           "message": "SKU invalide ou en double."}}  # fmt: skip
            return out(self.create(body["sku"], **values(body)))

        async def batch(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            body = await request.json()
            if len(body.get("create", [])) + len(body.get("update", [])) > 100:
                return JSONResponse({"code": "rest_batch_max_exceeded"}, status_code=413)
            self.writes += 1
            answer: dict[str, list[Any]] = {"create": [], "update": []}
            for item in body.get("create", []):
                answer["create"].append(create(item))
            for item in body.get("update", []):
                if str(item["id"]) not in self.products:
                    answer["update"].append({"id": item["id"], "error": {
                        "code": "woocommerce_rest_product_invalid_id", "message": "ID invalide.",
                        "data": {"status": 400}}})  # fmt: skip
                else:
                    answer["update"].append(out(self.update(str(item["id"]), **values(item))))
            return JSONResponse({k: v for k, v in answer.items() if k in body})

        async def listing(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            per_page = int(request.query_params.get("per_page", 10))
            page = int(request.query_params.get("page", 1))
            items = list(self.products.values())
            if skus := request.query_params.get("sku"):  # comma-separated, as WooCommerce takes
                items = [p for p in items if p.sku in skus.split(",")]
            pages = max(1, -(-len(items) // per_page))
            chunk = items[(page - 1) * per_page : page * per_page]
            return JSONResponse([out(p) for p in chunk], headers={
                "X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)})  # fmt: skip

        base = "/wp-json/wc/v3"
        return Starlette(routes=[
            Route(f"{base}/system_status", system_status),
            Route(f"{base}/products/batch", batch, methods=["POST"]),
            Route(f"{base}/products", listing),
        ])  # fmt: skip

    def connector(self, url: str) -> dict[str, Any]:
        return {"platform": "woocommerce", "base_url": url,
                "credentials": {"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET}}  # fmt: skip


# --- Magento 2 REST ---------------------------------------------------------------------


@dataclass
class BulkOperation:
    index: int
    product: dict[str, Any]
    status: int = 4  # open: queued, not yet consumed
    result_message: str | None = None


@dataclass
class MagentoFake(StoreFake):
    """Bulk requests are queued, as Magento's message queue does: the products are saved
    when the consumer runs, here when the bulk's status has been asked `open_polls` times.
    An operation fails (status 3) for a SKU in `refuse`, with its message, and fails in a
    way worth retrying (status 2) for a SKU in `retriable`."""

    open_polls: int = 0
    refuse: dict[str, str] = field(default_factory=dict)
    retriable: dict[str, str] = field(default_factory=dict)
    bulks: dict[str, list[BulkOperation]] = field(default_factory=dict)
    status_polls: int = 0
    admin_logins: int = 0

    def app(self) -> Starlette:
        async def guard(request: Request) -> Response | None:
            self.requests.append((request.method, request.url.path))
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return JSONResponse({"message": "The consumer isn't authorized to access %resources.",
                                     "parameters": {"resources": "Magento_Catalog::products"}},
                                    status_code=401)  # fmt: skip
            return self.pending_error()

        async def admin_token(request: Request) -> Response:
            """An admin user's token (the same one each time: tests.connectors.fakes.faults
            makes it expire, and a login revives it)."""
            self.requests.append((request.method, request.url.path))
            body = await request.json()
            if (body.get("username"), body.get("password")) != (MAGENTO_ADMIN, MAGENTO_PASSWORD):
                return JSONResponse({"message": "The account sign-in was incorrect or your account "
                                     "is disabled temporarily. Please wait and try again later."},
                                    status_code=401)  # fmt: skip
            self.admin_logins += 1
            return JSONResponse(TOKEN)  # Magento answers the token as a JSON string

        async def store_configs(request: Request) -> Response:
            return await guard(request) or JSONResponse(
                [{"id": 1, "code": "default", "base_url": "https://magento.example/"}]
            )

        def ean_of(product: dict[str, Any]) -> str | None:
            return next((a["value"] for a in product.get("custom_attributes", [])
                         if a["attribute_code"] == "ean"), None)  # fmt: skip

        async def bulk(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            self.writes += 1
            bulk_uuid = str(uuid.uuid4())
            operations, items = [], []
            for index, entry in enumerate(await request.json()):
                if not isinstance(entry.get("product"), dict) or not entry["product"].get("sku"):
                    items.append({"id": index, "status": "rejected",
                                  "error_message": "product.sku is required"})  # fmt: skip
                    continue
                operations.append(BulkOperation(index, entry["product"]))
                items.append({"id": index, "data_hash": f"h{index}", "status": "accepted"})
            self.bulks[bulk_uuid] = operations
            return JSONResponse({"bulk_uuid": bulk_uuid, "request_items": items,
                                 "errors": len(operations) < len(items)})  # fmt: skip

        def consume(operation: BulkOperation) -> None:
            product = operation.product
            if message := self.refuse.get(product["sku"]):
                operation.status, operation.result_message = 3, message
                return
            if message := self.retriable.get(product["sku"]):
                operation.status, operation.result_message = 2, message
                return
            stock = (product.get("extension_attributes") or {}).get("stock_item", {})
            self.upsert_by_sku(product["sku"], name=product.get("name"), ean=ean_of(product),
                               price=product.get("price"), stock=stock.get("qty"),
                               active=product.get("status") == 1)  # fmt: skip
            operation.status = 1
            operation.result_message = (
                "Service execution success Magento\\Catalog\\Model\\ProductRepository::save"
            )

        async def bulk_status(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            operations = self.bulks.get(request.path_params["uuid"])
            if operations is None:
                return JSONResponse({"message": "Bulk is not found"}, status_code=404)
            self.status_polls += 1
            if self.status_polls > self.open_polls:
                for operation in operations:
                    if operation.status == 4:
                        consume(operation)
            return JSONResponse({
                "operations_list": [{"id": o.index, "status": o.status,
                                     "result_message": o.result_message, "error_code": None}
                                    for o in operations],
                "user_type": 1, "bulk_id": request.path_params["uuid"],
                "description": "Topic async.magento.catalog.api.productrepositoryinterface.save.post",
                "start_time": "2026-12-06 10:00:00", "user_id": 1,
                "operation_count": len(operations),
            })  # fmt: skip

        async def listing(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            size = int(request.query_params["searchCriteria[pageSize]"])
            page = int(request.query_params["searchCriteria[currentPage]"])
            items = list(self.products.values())
            last = max(1, -(-len(items) // size))
            page = min(page, last)  # Magento repeats the last page past the end
            chunk = items[(page - 1) * size : page * size]
            return JSONResponse({
                "items": [{"id": int(p.id), "sku": p.sku, "name": p.name, "price": p.price,
                           "status": 1 if p.active else 2, "custom_attributes": (
                               [{"attribute_code": "ean", "value": p.ean}] if p.ean else []),
                           "extension_attributes": {"stock_item": {"qty": p.stock}}}
                          for p in chunk],
                "search_criteria": {"filter_groups": [], "page_size": size, "current_page": page},
                "total_count": len(items),
            })  # fmt: skip

        async def source_items(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            for item in (await request.json())["sourceItems"]:
                self.by_sku()[item["sku"]].stock = int(item["quantity"])
            return JSONResponse([])

        async def base_prices(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            failed = []
            skus = self.by_sku()
            for item in (await request.json())["prices"]:
                if item["sku"] in skus:
                    skus[item["sku"]].price = float(item["price"])
                else:
                    failed.append({"message": "Requested product doesn't exist: %sku",
                                   "parameters": {"sku": item["sku"]}})  # fmt: skip
            return JSONResponse(failed)

        return Starlette(routes=[
            Route("/rest/V1/integration/admin/token", admin_token, methods=["POST"]),
            Route("/rest/{store}/V1/integration/admin/token", admin_token, methods=["POST"]),
            Route("/rest/V1/store/storeConfigs", store_configs),
            Route("/rest/async/bulk/V1/products", bulk, methods=["POST"]),
            Route("/rest/{store}/async/bulk/V1/products", bulk, methods=["POST"]),
            Route("/rest/V1/bulk/{uuid}/status", bulk_status),
            Route("/rest/{store}/V1/bulk/{uuid}/status", bulk_status),
            Route("/rest/V1/products", listing),
            Route("/rest/V1/inventory/source-items", source_items, methods=["POST"]),
            Route("/rest/V1/products/base-prices", base_prices, methods=["POST"]),
        ])  # fmt: skip

    def connector(self, url: str) -> dict[str, Any]:
        return {"platform": "magento", "base_url": url, "credentials": {"access_token": TOKEN}}


# --- Shopify Admin GraphQL --------------------------------------------------------------

THROTTLED = {
    "errors": [{"message": "Throttled", "extensions": {
        "code": "THROTTLED",
        "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
    "extensions": {"cost": {"requestedQueryCost": 80, "actualQueryCost": None, "throttleStatus": {
        "maximumAvailable": 2000.0, "currentlyAvailable": 40, "restoreRate": 100.0}}},
}  # fmt: skip


# The stable Admin API versions Shopify supports in December 2026 (four a year, each
# for at least twelve months).
SHOPIFY_SUPPORTED = ("2026-01", "2026-04", "2026-07", "2026-10")


class ShopifyFake(StoreFake):
    throttle = (200, {"x-fake": "throttled"})  # Shopify throttles with a 200 and THROTTLED

    def pending_error(self) -> Response | None:
        if self.errors and self.errors[0][1].get("x-fake") == "throttled":
            self.errors.pop(0)
            return JSONResponse(THROTTLED)
        return super().pending_error()

    def app(self) -> Starlette:
        def gid(kind: str, pid: str) -> str:
            return f"gid://shopify/{kind}/{pid}"

        def node(p: Remote) -> dict[str, Any]:
            return {"id": gid("Product", p.id), "title": p.name, "descriptionHtml": "",
                    "vendor": "", "status": "ACTIVE" if p.active else "DRAFT",
                    "variants": {"nodes": [{"sku": p.sku, "barcode": p.ean,
                                            "price": None if p.price is None else f"{p.price:.2f}",
                                            "inventoryQuantity": p.stock}]}}  # fmt: skip

        def product_set(data: dict[str, Any], identifier: dict[str, Any] | None) -> dict[str, Any]:
            """An update by id, an upsert by handle (identifier, API 2025-04+), else a create."""
            variant = data["variants"][0]
            values = {"name": data["title"], "ean": variant.get("barcode"),
                      "price": float(variant["price"]) if "price" in variant else None,
                      "active": data["status"] == "ACTIVE", "handle": data.get("handle")}  # fmt: skip
            pid = (identifier or {}).get("id") or data.get("id")
            handle = (identifier or {}).get("handle")
            if pid:
                pid = pid.rsplit("/", 1)[1]
                if pid not in self.products:
                    return {"product": None, "userErrors": [{"field": ["id"], "code": "NOT_FOUND",
                                                              "message": "Product does not exist"}]}  # fmt: skip
            elif handle:
                pid = next((p.id for p in self.products.values() if p.handle == handle), None)
            p = (self.update(pid, **values) if pid
                 else self.create(variant["inventoryItem"]["sku"], **values))  # fmt: skip
            return {"product": {"id": gid("Product", p.id)}, "userErrors": []}

        async def graphql(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            if request.headers.get("x-shopify-access-token") != TOKEN:
                return JSONResponse({"errors": "[API] Invalid API key or access token"},
                                    status_code=401)  # fmt: skip
            if refused := self.pending_error():
                return refused
            body = await request.json()
            query, variables = body["query"], body.get("variables") or {}
            data: dict[str, Any] = {}
            if "shop {" in query:
                data = {"shop": {"name": "Pixee Demo Shop"}}
            elif "productSet" in query:
                self.writes += 1
                data = {k: product_set(v, variables.get(f"i{k[1:]}"))
                        for k, v in variables.items() if k.startswith("p")}  # fmt: skip
            elif "products(first" in query:
                items = list(self.products.values())
                start = int(variables.get("after") or 0)
                chunk = items[start : start + variables["first"]]
                end = start + len(chunk)
                data = {"products": {"nodes": [node(p) for p in chunk], "pageInfo": {
                    "hasNextPage": end < len(items), "endCursor": str(end)}}}  # fmt: skip
            elif "nodes(ids" in query:
                data = {"locations": {"nodes": [{"id": gid("Location", "1")}]}, "nodes": [
                    {"id": i, "variants": {"nodes": [{
                        "id": gid("ProductVariant", i.rsplit("/", 1)[1]),
                        "inventoryItem": {"id": gid("InventoryItem", i.rsplit("/", 1)[1])}}]}}
                    if i.rsplit("/", 1)[1] in self.products else None
                    for i in variables["ids"]]}  # fmt: skip
            elif "inventorySetQuantities" in query:
                for q in variables["input"]["quantities"]:
                    self.products[q["inventoryItemId"].rsplit("/", 1)[1]].stock = q["quantity"]
                data = {"inventorySetQuantities": {"userErrors": []}}
            elif "productVariantsBulkUpdate" in query:
                for name, value in variables.items():
                    if name.startswith("v"):
                        pid = value[0]["id"].rsplit("/", 1)[1]
                        self.products[pid].price = float(value[0]["price"])
                        data[f"p{name[1:]}"] = {"userErrors": []}
            cost = {
                "requestedQueryCost": 10,
                "actualQueryCost": 10,
                "throttleStatus": {
                    "maximumAvailable": 2000.0,
                    "currentlyAvailable": 1990,
                    "restoreRate": 100.0,
                },
            }
            return JSONResponse({"data": data, "extensions": {"cost": cost}})

        async def versioned(request: Request) -> Response:
            # Shopify serves an unsupported version as its oldest supported one, and
            # says which it served.
            asked = request.path_params["version"]
            response = await graphql(request)
            served = asked if asked in SHOPIFY_SUPPORTED else min(SHOPIFY_SUPPORTED)
            response.headers["X-Shopify-API-Version"] = served
            return response

        async def access_token(request: Request) -> Response:
            """The client credentials grant, as shopify.dev shows it: a form of exactly the
            grant type, client id and secret; the token lasts 24 hours. (The body of a
            refusal is not in the docs: an OAuth error, RFC 6749 §5.2.)"""
            self.requests.append((request.method, request.url.path))
            form = urllib.parse.parse_qs((await request.body()).decode())
            expected = {"grant_type": ["client_credentials"]} | {
                name: [value] for name, value in SHOPIFY_CLIENT.items()
            }
            if (request.headers.get("content-type") != "application/x-www-form-urlencoded"
                    or form != expected):  # fmt: skip
                return JSONResponse({"error": "invalid_client"}, status_code=400)
            return JSONResponse({"access_token": TOKEN, "expires_in": 86399,
                                 "scope": "write_products,write_inventory"})  # fmt: skip

        return Starlette(routes=[
            Route("/admin/api/{version}/graphql.json", versioned, methods=["POST"]),
            Route("/admin/oauth/access_token", access_token, methods=["POST"]),
        ])  # fmt: skip

    def connector(self, url: str) -> dict[str, Any]:
        return {"platform": "shopify", "base_url": url, "credentials": {"access_token": TOKEN}}


# --- BigCommerce Catalog API v3 ---------------------------------------------------------

STORE = "/stores/abc123"


class BigCommerceFake(StoreFake):
    throttle = (429, {"X-Rate-Limit-Time-Reset-Ms": "1500", "X-Rate-Limit-Requests-Left": "0"})

    def app(self) -> Starlette:
        async def guard(request: Request) -> Response | None:
            self.requests.append((request.method, request.url.path))
            if request.headers.get("x-auth-token") != TOKEN:
                return JSONResponse({"status": 401, "title": "Unauthorized"}, status_code=401)
            return self.pending_error()

        def out(p: Remote) -> dict[str, Any]:
            return {"id": int(p.id), "name": p.name, "sku": p.sku, "gtin": p.ean or "",
                    "price": p.price or 0, "inventory_level": p.stock or 0, "weight": 0,
                    "is_visible": p.active, "description": ""}  # fmt: skip

        def values(body: dict[str, Any]) -> dict[str, Any]:
            return {"name": body.get("name"), "ean": body.get("gtin"), "price": body.get("price"),
                    "stock": body.get("inventory_level")}  # fmt: skip

        async def store(request: Request) -> Response:
            return await guard(request) or JSONResponse({"id": "abc123", "name": "BC Demo"})

        async def products(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            if request.method == "POST":
                self.writes += 1
                body = await request.json()
                if body["sku"] in self.by_sku():  # BigCommerce SKUs are unique per store
                    return JSONResponse({"status": 409, "title": "The product sku is a duplicate",
                                         "errors": {}}, status_code=409)  # fmt: skip
                return JSONResponse({"data": out(self.create(body["sku"], **values(body))),
                                     "meta": {}})  # fmt: skip
            if request.method == "PUT":
                body = await request.json()
                if len(body) > 10:
                    return JSONResponse({"status": 413, "title": "Too many"}, status_code=413)
                self.writes += 1
                return JSONResponse(
                    {
                        "data": [out(self.update(str(b["id"]), **values(b))) for b in body],
                        "meta": {},
                    }
                )
            limit = int(request.query_params.get("limit", 50))
            page = int(request.query_params.get("page", 1))
            items = list(self.products.values())
            if skus := request.query_params.get("sku:in"):
                items = [p for p in items if p.sku in skus.split(",")]
            pages = max(1, -(-len(items) // limit))
            chunk = items[(page - 1) * limit : page * limit]
            return JSONResponse({"data": [out(p) for p in chunk], "meta": {"pagination": {
                "total": len(items), "count": len(chunk), "per_page": limit,
                "current_page": page, "total_pages": pages, "links": {}}}})  # fmt: skip

        return Starlette(routes=[
            Route(f"{STORE}/v2/store", store),
            Route(f"{STORE}/v3/catalog/products", products, methods=["GET", "POST", "PUT"]),
        ])  # fmt: skip

    def connector(self, url: str) -> dict[str, Any]:
        return {"platform": "bigcommerce", "base_url": url + STORE,
                "credentials": {"access_token": TOKEN}}  # fmt: skip


FAKES: dict[str, type[StoreFake]] = {
    "woocommerce": WooFake,
    "magento": MagentoFake,
    "shopify": ShopifyFake,
    "bigcommerce": BigCommerceFake,
}
