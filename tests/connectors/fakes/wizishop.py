"""A strict WiziShop API v3 for the exactly-once tests: a JWT from `auth/login` with
the account's default shop, and shop products, each POST creating a new product
(nothing in WiziShop's documentation says a SKU is unique or that a create is
matched to an existing product), listed and filtered by SKU."""

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.connectors.fakes.sessions import Sessions, jwt

TOKEN_PATH = "/v3/auth/login"
SHOP = "/v3/shops/42"


@dataclass
class Wizishop:
    sessions: Sessions = field(default_factory=lambda: Sessions(jwt("shop@example.com")))
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: itertools.count(1001))

    def app(self) -> Starlette:
        async def login(request: Request) -> Response:
            if await request.json() != {"username": "shop@example.com", "password": "pw"}:
                return JSONResponse({"message": "Bad credentials"}, 401)
            return JSONResponse({"token": self.sessions.login(), "default_shop_id": 42,
                                 "account_id": 7}, 201)  # fmt: skip

        async def products(request: Request) -> Response:
            if refused := self.sessions.refused(request):
                return refused
            if request.method == "POST":
                body = await request.json()
                if not body.get("name") or not body.get("skus"):
                    return JSONResponse({"message": "name and skus are required"}, 400)
                created = {**body, "id": next(self.ids)}
                self.products[str(created["id"])] = created
                self.sessions.creates.append(body["skus"][0]["sku"])
                return JSONResponse(created, 201)
            query = request.query_params
            found = [p for p in self.products.values()
                     if "sku" not in query or any(s["sku"] == query["sku"] for s in p["skus"])]  # fmt: skip
            page, limit = int(query.get("page", 1)), int(query.get("limit", 20))
            return JSONResponse({"results": found[(page - 1) * limit : page * limit],
                                 "total": len(found)})  # fmt: skip

        async def product(request: Request) -> Response:
            if refused := self.sessions.refused(request):
                return refused
            found = self.products.get(request.path_params["id"])
            if found is None:
                return JSONResponse({"message": "Product not found"}, 404)
            found.update(await request.json())
            return JSONResponse(found)

        return Starlette(routes=[
            Route(TOKEN_PATH, login, methods=["POST"]),
            Route(f"{SHOP}/products", products, methods=["GET", "POST"]),
            Route(f"{SHOP}/products/{{id}}", product, methods=["PUT"]),
        ])  # fmt: skip
