"""A strict Sylius Admin API (API Platform) for the exactly-once tests: a JWT from
`administrators/token`, JSON-LD bodies, products and product variants each kept
once under its code. A code is unique: a second POST with it answers 422 with the
violation, as Sylius does; a variant needs its product to exist."""

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.connectors.fakes.sessions import Sessions, jwt

ADMIN = "/api/v2/admin"
TOKEN_PATH = f"{ADMIN}/administrators/token"
LD = "application/ld+json"


def violation(path: str, message: str) -> JSONResponse:
    return JSONResponse({"@type": "ConstraintViolationList", "violations": [
        {"propertyPath": path, "message": message}]}, 422, media_type=LD)  # fmt: skip


def not_found() -> JSONResponse:
    return JSONResponse({"@type": "hydra:Error", "hydra:description": "Not Found"}, 404,
                        media_type=LD)  # fmt: skip


@dataclass
class Sylius:
    sessions: Sessions = field(default_factory=lambda: Sessions(jwt("admin@example.com")))
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    variant_creates: list[str] = field(default_factory=list)

    def complete(self) -> set[str]:
        """Codes of the products that have their variant."""
        return {v["product"].rsplit("/", 1)[-1] for v in self.variants.values()}

    async def body(self, request: Request) -> dict[str, Any]:
        assert request.headers.get("content-type") == LD, request.headers.get("content-type")
        body: dict[str, Any] = await request.json()
        return body

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            if await request.json() != {"email": "admin@example.com", "password": "sylius"}:
                return JSONResponse({"code": 401, "message": "Invalid credentials."}, 401)
            return JSONResponse({"token": self.sessions.login()})

        async def products(request: Request) -> Response:
            if refused := self.sessions.refused(request):
                return refused
            body = await self.body(request)
            if body["code"] in self.products:
                return violation("code", "Product code must be unique.")
            if not body.get("translations"):
                return violation("translations", "Please enter product name.")
            self.products[body["code"]] = {**body, "@id": f"{ADMIN}/products/{body['code']}"}
            self.sessions.creates.append(body["code"])
            return JSONResponse(self.products[body["code"]], 201, media_type=LD)

        async def product(request: Request) -> Response:
            if refused := self.sessions.refused(request):
                return refused
            found = self.products.get(request.path_params["code"])
            if found is None:
                return not_found()
            if request.method == "PUT":
                found.update(await self.body(request))
            return JSONResponse(found, media_type=LD)

        async def variants(request: Request) -> Response:
            if refused := self.sessions.refused(request):
                return refused
            body = await self.body(request)
            if body["code"] in self.variants:
                return violation("code", "Product variant code must be unique.")
            if body.get("product", "").rsplit("/", 1)[-1] not in self.products:
                return violation("product", "Product does not exist.")
            self.variants[body["code"]] = body
            self.variant_creates.append(body["code"])
            return JSONResponse(body, 201, media_type=LD)

        async def variant(request: Request) -> Response:
            if refused := self.sessions.refused(request):
                return refused
            found = self.variants.get(request.path_params["code"])
            return not_found() if found is None else JSONResponse(found, media_type=LD)

        return Starlette(routes=[
            Route(TOKEN_PATH, token, methods=["POST"]),
            Route(f"{ADMIN}/products", products, methods=["POST"]),
            Route(f"{ADMIN}/products/{{code}}", product, methods=["GET", "PUT"]),
            Route(f"{ADMIN}/product-variants", variants, methods=["POST"]),
            Route(f"{ADMIN}/product-variants/{{code}}", variant, methods=["GET"]),
        ])  # fmt: skip
