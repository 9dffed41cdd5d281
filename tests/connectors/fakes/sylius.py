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
    # Records by collection ("products", "product-variants"), each by its code.
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"products": {}, "product-variants": {}}
    )

    @property
    def products(self) -> dict[str, dict[str, Any]]:
        return self.records["products"]

    def complete(self) -> set[str]:
        """Codes of the products that have their variant."""
        variants = self.records["product-variants"].values()
        return {variant["product"].rsplit("/", 1)[-1] for variant in variants}

    def invalid(self, kind: str, body: dict[str, Any]) -> JSONResponse | None:
        if body["code"] in self.records[kind]:
            return violation("code", "This code is already used.")
        if kind == "products" and not body.get("translations"):
            return violation("translations", "Please enter product name.")
        if kind == "product-variants" and body["product"].rsplit("/", 1)[-1] not in self.products:
            return violation("product", "Product does not exist.")
        return None

    async def body(self, request: Request) -> dict[str, Any]:
        assert request.headers.get("content-type") == LD, request.headers.get("content-type")
        body: dict[str, Any] = await request.json()
        return body

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            if await request.json() != {"email": "admin@example.com", "password": "sylius"}:
                return JSONResponse({"code": 401, "message": "Invalid credentials."}, 401)
            return JSONResponse({"token": self.sessions.login()})

        async def create(request: Request) -> Response:
            kind = request.path_params["kind"]
            if kind not in self.records:
                return not_found()
            if refused := self.sessions.refused(request):
                return refused
            body = await self.body(request)
            if invalid := self.invalid(kind, body):
                return invalid
            record = self.records[kind][body["code"]] = {**body, "@id": f"{ADMIN}/{kind}/{body['code']}"}  # fmt: skip
            if kind == "products":
                self.sessions.creates.append(body["code"])
            return JSONResponse(record, 201, media_type=LD)

        async def item(request: Request) -> Response:
            kind, code = request.path_params["kind"], request.path_params["code"]
            if refused := self.sessions.refused(request):
                return refused
            found = self.records.get(kind, {}).get(code)
            if found is None:
                return not_found()
            if request.method == "PUT":
                found.update(await self.body(request))
            return JSONResponse(found, media_type=LD)

        return Starlette(routes=[
            Route(TOKEN_PATH, token, methods=["POST"]),
            Route(f"{ADMIN}/{{kind}}", create, methods=["POST"]),
            Route(f"{ADMIN}/{{kind}}/{{code}}", item, methods=["GET", "PUT"]),
        ])  # fmt: skip
