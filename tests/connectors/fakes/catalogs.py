"""Catalog fakes of Squarespace, Saleor and Medusa for the exactly-once tests: every
product created is a separate record, with the uniqueness rules of the platform
(Saleor: variant SKU; Medusa: product handle; Squarespace: none), and the lookups
the adapters reconcile with. They sit behind tests.connectors.fakes.faults like the other fakes."""

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


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

    def create(self, sku: str, handle: str | None = None) -> Record:
        n = next(self.ids)
        record = Record(f"prod_{n}", f"var_{n}", sku, handle)
        self.records[record.id] = record
        self.creates.append(sku)
        return record

    def by(self, attribute: str) -> dict[str | None, Record]:
        return {getattr(r, attribute): r for r in self.records.values()}


def squarespace(catalog: Catalog) -> Starlette:
    def out(r: Record) -> dict[str, Any]:
        return {"id": r.id, "name": r.sku, "variants": [{"id": r.variant, "sku": r.sku}]}

    async def products(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await request.json()
            return JSONResponse(out(catalog.create(body["variants"][0]["sku"])), 201)
        records = list(catalog.records.values())
        start = int(request.query_params.get("cursor") or 0)
        page = records[start : start + 50]
        more = start + 50 < len(records)
        return JSONResponse({"products": [out(r) for r in page], "pagination": {
            "hasNextPage": more, "nextPageCursor": str(start + 50) if more else None}})  # fmt: skip

    async def update(request: Request) -> JSONResponse:
        return JSONResponse(out(catalog.records[request.path_params["id"]]))

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

    async def graphql(request: Request) -> JSONResponse:
        body = await request.json()
        query, variables = body["query"], body.get("variables") or {}
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

    async def batch(request: Request) -> JSONResponse:
        body = await request.json()
        handles = catalog.by("handle")
        if any(p["handle"] in handles for p in body["create"]):
            return JSONResponse(taken, 400)  # one workflow: refused as a whole
        created = [
            out(catalog.create(p["variants"][0]["sku"], p["handle"])) for p in body["create"]
        ]
        updated = [out(catalog.records[p["id"]]) for p in body["update"]]
        return JSONResponse({"created": created, "updated": updated, "deleted": {"ids": []}})

    async def products(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await request.json()
            if body["handle"] in catalog.by("handle"):
                return JSONResponse(taken, 400)
            return JSONResponse({"product": out(catalog.create(body["variants"][0]["sku"],
                                                               body["handle"]))})  # fmt: skip
        wanted = set(request.query_params.getlist("handle"))
        found = [out(r) for r in catalog.records.values() if r.handle in wanted]
        return JSONResponse({"products": found, "count": len(found)})

    async def update(request: Request) -> JSONResponse:
        return JSONResponse({"product": out(catalog.records[request.path_params["id"]])})

    return Starlette(routes=[
        Route("/admin/products/batch", batch, methods=["POST"]),
        Route("/admin/products", products, methods=["GET", "POST"]),
        Route("/admin/products/{id}", update, methods=["POST"]),
    ])  # fmt: skip
