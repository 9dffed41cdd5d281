"""Catalog fakes of Squarespace, Saleor and Medusa for the exactly-once tests: every
product created is a separate record, with the uniqueness rules of the platform
(Saleor: variant SKU; Medusa: product handle; Squarespace: none), and the lookups
the adapters reconcile with. They sit behind tests.connectors.fakes.faults like the other fakes.

Each checks credentials as its platform does. Squarespace's API key and the API keys
or app tokens of Saleor and Medusa do not expire; the session JWTs of Saleor
(`tokenCreate`) and Medusa (`/auth/user/emailpass`) do, and the catalog can make each
one stop working after `token_calls` requests: Medusa then answers 401, Saleor a 200
whose error code is ExpiredSignatureError, as it does for a JWT past its `exp`."""

import base64
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "k"  # Squarespace's API key, Medusa's secret API key, Saleor's app token
EMAIL, PASSWORD = "admin@pixee.fr", "secret"


@dataclass
class Record:
    id: str
    variant: str
    sku: str
    handle: str | None = None


@dataclass
class Catalog:
    records: dict[str, Record] = field(default_factory=dict)
    creates: list[str] = field(default_factory=list)  # SKU of every create processed
    ids: Any = field(default_factory=lambda: itertools.count(1))
    # Session tokens handed out (and how many requests each has made), and after how
    # many requests one expires (None: never).
    sessions: dict[str, int] = field(default_factory=dict)
    token_calls: int | None = None
    refusals: int = 0

    def login(self, email: str | None, password: str | None) -> str | None:
        if (email, password) != (EMAIL, PASSWORD):
            return None
        token = f"jwt-{len(self.sessions) + 1}"
        self.sessions[token] = 0
        return token

    def access(self, authorization: str | None) -> str:
        """ "ok", "expired" or "refused" for a request with this Authorization header."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme == "Basic":  # Medusa's secret API key: the key as user name, no password
            token = base64.b64decode(token).decode(errors="replace").removesuffix(":")
        if token == API_KEY:
            return "ok"
        if scheme != "Bearer" or token not in self.sessions:
            return "refused"
        self.sessions[token] += 1
        if self.token_calls is not None and self.sessions[token] > self.token_calls:
            self.refusals += 1
            return "expired"
        return "ok"

    def create(self, sku: str, handle: str | None = None) -> Record:
        n = next(self.ids)
        record = Record(f"prod_{n}", f"var_{n}", sku, handle)
        self.records[record.id] = record
        self.creates.append(sku)
        return record

    def by(self, attribute: str) -> dict[str | None, Record]:
        return {getattr(r, attribute): r for r in self.records.values()}


def _refusal(catalog: Catalog, request: Request) -> Response | None:
    """The 401 of a REST platform (Squarespace, Medusa) to a request it does not admit."""
    if catalog.access(request.headers.get("authorization")) == "ok":
        return None
    return JSONResponse({"type": "unauthorized", "message": "Unauthorized"}, 401)


def squarespace(catalog: Catalog) -> Starlette:
    def out(r: Record) -> dict[str, Any]:
        return {"id": r.id, "name": r.sku, "variants": [{"id": r.variant, "sku": r.sku}]}

    async def products(request: Request) -> Response:
        if refused := _refusal(catalog, request):
            return refused
        if request.method == "POST":
            body = await request.json()
            return JSONResponse(out(catalog.create(body["variants"][0]["sku"])), 201)
        records = list(catalog.records.values())
        start = int(request.query_params.get("cursor") or 0)
        page = records[start : start + 50]
        more = start + 50 < len(records)
        return JSONResponse({"products": [out(r) for r in page], "pagination": {
            "hasNextPage": more, "nextPageCursor": str(start + 50) if more else None}})  # fmt: skip

    async def update(request: Request) -> Response:
        return _refusal(catalog, request) or JSONResponse(
            out(catalog.records[request.path_params["id"]])
        )

    return Starlette(routes=[
        Route("/1.0/commerce/products", products, methods=["GET", "POST"]),
        Route("/1.0/commerce/products/{id}", update, methods=["POST"]),
        Route("/1.0/commerce/products/{id}/variants/{variant}", update, methods=["POST"]),
    ])  # fmt: skip


def saleor(catalog: Catalog) -> Starlette:
    def node(r: Record) -> dict[str, Any]:
        return {"id": r.id, "variants": [{"id": r.variant, "sku": r.sku}]}

    def bulk_create(variables: dict[str, Any]) -> dict[str, Any]:
        results = []
        for product in variables["products"]:
            sku = product["variants"][0]["sku"]
            if sku in catalog.by("sku"):  # variant SKUs are unique in Saleor
                results.append({"product": None, "errors": [
                    {"path": "variants.0.sku", "message": "SKU already exists", "code": "UNIQUE"}]})  # fmt: skip
            else:
                results.append({"product": node(catalog.create(sku)), "errors": []})
        return {"productBulkCreate": {"results": results, "errors": []}}

    def error(message: str, code: str) -> JSONResponse:
        return JSONResponse({"errors": [{"message": message,
                                         "extensions": {"exception": {"code": code}}}]})  # fmt: skip

    async def graphql(request: Request) -> JSONResponse:
        body = await request.json()
        query, variables = body["query"], body.get("variables") or {}
        if "tokenCreate" in query:
            token = catalog.login(variables.get("email"), variables.get("password"))
            errors = [] if token else [{"field": "email", "message": "Please, enter valid credentials",
                                        "code": "INVALID_CREDENTIALS"}]  # fmt: skip
            return JSONResponse({"data": {"tokenCreate": {"token": token, "errors": errors}}})
        access = catalog.access(request.headers.get("authorization"))
        if access == "expired":
            return error("Signature has expired", "ExpiredSignatureError")
        if access == "refused":
            return error("You need one of the following permissions: MANAGE_PRODUCTS",
                         "PermissionDenied")  # fmt: skip
        if "productBulkCreate" in query:
            data = bulk_create(variables)
        elif "productVariants(" in query:
            skus = catalog.by("sku")
            data = {"productVariants": {"edges": [
                {"node": {"id": skus[s].variant, "sku": s, "product": {"id": skus[s].id}}}
                for s in variables["skus"] if s in skus]}}  # fmt: skip
        else:  # aliased updates: every alias succeeds
            data = {alias: {"product": {"id": "x"}, "productVariant": {"id": "x"}, "errors": []}
                    for alias in re.findall(r"\b(m[0-9]\w*):", query)}  # fmt: skip
        return JSONResponse({"data": data})

    return Starlette(routes=[Route("/graphql/", graphql, methods=["POST"])])


def medusa(catalog: Catalog) -> Starlette:
    def out(r: Record) -> dict[str, Any]:
        return {"id": r.id, "handle": r.handle, "variants": [{"id": r.variant, "sku": r.sku}]}

    taken = {"type": "invalid_data", "message": "Product with handle already exists."}

    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        token = catalog.login(body.get("email"), body.get("password"))
        if token is None:
            return JSONResponse(
                {"type": "unauthorized", "message": "Invalid email or password"}, 401
            )
        return JSONResponse({"token": token})

    async def batch(request: Request) -> Response:
        if refused := _refusal(catalog, request):
            return refused
        body = await request.json()
        handles = catalog.by("handle")
        if any(p["handle"] in handles for p in body["create"]):
            return JSONResponse(taken, 400)  # one workflow: refused as a whole
        created = [
            out(catalog.create(p["variants"][0]["sku"], p["handle"])) for p in body["create"]
        ]
        updated = [out(catalog.records[p["id"]]) for p in body["update"]]
        return JSONResponse({"created": created, "updated": updated, "deleted": {"ids": []}})

    async def products(request: Request) -> Response:
        if refused := _refusal(catalog, request):
            return refused
        if request.method == "POST":
            body = await request.json()
            if body["handle"] in catalog.by("handle"):
                return JSONResponse(taken, 400)
            return JSONResponse({"product": out(catalog.create(body["variants"][0]["sku"],
                                                               body["handle"]))})  # fmt: skip
        wanted = set(request.query_params.getlist("handle"))
        found = [out(r) for r in catalog.records.values() if r.handle in wanted]
        return JSONResponse({"products": found, "count": len(found)})

    async def update(request: Request) -> Response:
        return _refusal(catalog, request) or JSONResponse(
            {"product": out(catalog.records[request.path_params["id"]])}
        )

    return Starlette(routes=[
        Route("/auth/user/emailpass", login, methods=["POST"]),
        Route("/admin/products/batch", batch, methods=["POST"]),
        Route("/admin/products", products, methods=["GET", "POST"]),
        Route("/admin/products/{id}", update, methods=["POST"]),
    ])  # fmt: skip
