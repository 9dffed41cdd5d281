"""A strict fake of a Mirakl shop (MMP seller APIs) for the exactly-once tests: P41
product imports feed the operator's catalog, OF24 and OF01 offer imports upsert the
shop's offers by shop SKU, OF02 reports an import's status, OF03 its error report.

As on Mirakl: an offer whose product (EAN, or shop SKU) is not in the catalog, or
without a price, is an error line of its import; a second offer import within
`import_interval` seconds of the previous one is refused with 429; the shop API key
goes in the Authorization header, as is. Every import processed is kept, so a test
sees what was sent more than once (and that it was an upsert). It sits behind
tests.connectors.fakes.faults like the other fakes.
"""

import csv
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

API_KEY = "shop-key"
SHOP_ID = "2001"
UNKNOWN_PRODUCT = "The product does not exist"
NO_PRICE = "The price is required"
NUMBERS = {"quantity": int, "price": float}  # the columns a partial import may carry


@dataclass
class Import:
    lines: list[dict[str, Any]]
    errors: dict[str, str]  # shop SKU -> error message
    polls: int = 0


@dataclass
class MiraklShop:
    # Mirakl refuses a second OF01/OF24 within this many seconds (a minute, for real).
    import_interval: float = 0.0
    catalog: dict[str, dict[str, str]] = field(default_factory=dict)  # by EAN and by SKU
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by shop SKU
    imports: dict[int, Import] = field(default_factory=dict)  # offer imports, by id
    product_imports: list[list[dict[str, str]]] = field(default_factory=list)
    offer_sends: Counter[str] = field(default_factory=Counter)  # offer lines per shop SKU
    refused_imports: int = 0  # refused for coming too soon
    last_import: float = float("-inf")
    # Keys seen by the shop (a test asserts which ones reached another host).
    keys: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/products/imports", self.p41, methods=["POST"]),
            Route("/api/offers", self.of24, methods=["POST"]),
            Route("/api/offers", self.of21, methods=["GET"]),
            Route("/api/offers/imports", self.of01, methods=["POST"]),
            Route("/api/offers/imports/{id:int}", self.of02),
            Route("/api/offers/imports/{id:int}/error_report", self.of03),
        ])  # fmt: skip

    def _refused(self, request: Request) -> Response | None:
        key = request.headers.get("authorization", "")
        self.keys.append(key)
        if key != API_KEY:
            return JSONResponse({"status": 401, "message": "Unauthorized"}, 401)
        if request.query_params.get("shop_id") != SHOP_ID:
            return JSONResponse({"status": 400, "message": "shop_id is required"}, 400)
        return None

    def _too_soon(self) -> Response | None:
        now = time.monotonic()
        # Slack for a loaded test machine: the adapter paces departures, the fake sees
        # arrivals; an adapter that does not pace sends its imports milliseconds apart.
        if now - self.last_import < self.import_interval / 2:
            self.refused_imports += 1
            wait = str(max(1, round(self.import_interval)))
            return JSONResponse({"status": 429, "message": "Too many imports"}, 429,
                                headers={"Retry-After": wait})  # fmt: skip
        self.last_import = now
        return None

    async def p41(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        rows = await csv_file(request)
        self.product_imports.append(rows)
        for row in rows:  # the operator integrates the sheets (at once, in this fake)
            self.catalog[row["ean"] or row["sku"]] = row
            self.catalog[row["sku"]] = row
        return JSONResponse({"import_id": len(self.product_imports)}, 201)

    def _import(self, lines: list[dict[str, Any]], errors: dict[str, str]) -> Response:
        import_id = len(self.imports) + 1
        self.imports[import_id] = Import(lines, errors)
        self.offer_sends.update(line["shop_sku"] for line in lines)
        return JSONResponse({"import_id": import_id}, 201)

    async def of24(self, request: Request) -> Response:
        if refused := self._refused(request) or self._too_soon():
            return refused
        lines = (await request.json())["offers"]
        errors: dict[str, str] = {}
        for line in lines:
            sku = line["shop_sku"]
            if line.get("update_delete") != "update":
                errors[sku] = "update_delete must be update or delete"
            elif line.get("product_id") not in self.catalog:
                errors[sku] = UNKNOWN_PRODUCT
            elif line.get("price") is None:
                errors[sku] = NO_PRICE
            else:  # an upsert by shop SKU; whatever is not sent is reset
                self.offers[sku] = dict(line)
        return self._import(lines, errors)

    async def of01(self, request: Request) -> Response:
        if refused := self._refused(request) or self._too_soon():
            return refused
        form = await request.form()
        if form.get("import_mode") != "PARTIAL_UPDATE":
            return JSONResponse({"status": 400, "message": "import_mode"}, 400)
        rows = await csv_file(request)
        errors = {r["sku"]: "The offer does not exist" for r in rows if r["sku"] not in self.offers}
        for row in rows:
            if row["sku"] not in errors:
                # Only the columns sent change; OF21 gives them back as numbers.
                self.offers[row["sku"]].update(
                    {k: NUMBERS[k](v) for k, v in row.items() if k != "sku"}
                )
        return self._import([{"shop_sku": r["sku"], **r} for r in rows], errors)

    async def of02(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        job = self.imports.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"status": 404, "message": "Import not found"}, 404)
        job.polls += 1
        if job.polls == 1:  # every import is seen running once
            return JSONResponse({"import_id": request.path_params["id"], "status": "RUNNING"})
        return JSONResponse({
            "import_id": request.path_params["id"], "status": "COMPLETE",
            "lines_read": len(job.lines), "lines_in_success": len(job.lines) - len(job.errors),
            "lines_in_error": len(job.errors), "has_error_report": bool(job.errors),
        })  # fmt: skip

    async def of03(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        job = self.imports.get(request.path_params["id"])
        if job is None or not job.errors:
            return JSONResponse({"status": 404, "message": "No error report"}, 404)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(["sku", "error-message"])
        writer.writerows(job.errors.items())
        return PlainTextResponse(out.getvalue(), media_type="text/csv")

    async def of21(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        offset, size = int(request.query_params["offset"]), int(request.query_params["max"])
        if size > 100:
            return JSONResponse({"status": 400, "message": "max must be at most 100"}, 400)
        offers = list(self.offers.values())[offset : offset + size]
        return JSONResponse({"offers": offers, "total_count": len(self.offers)})


async def csv_file(request: Request) -> list[dict[str, str]]:
    form = await request.form()
    upload = form["file"]
    assert not isinstance(upload, str), "the import must be a file"
    return list(csv.DictReader(io.StringIO((await upload.read()).decode()), delimiter=";"))
