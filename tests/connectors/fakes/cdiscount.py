"""A strict fake of Octopia's Seller API v2 (Cdiscount) for the exactly-once tests:
client-credentials tokens, product-integration packages and their reports.

As the adapter assumes of Octopia (its package resources could not be confirmed
against a public reference): a package is integrated progressively and reported per
sheet; a sheet is an upsert keyed by the seller's product reference, so a sheet sent
again in another package updates the same product; a sheet without a valid GTIN or a
title is refused in the report; report pages hold at most 100 items. Every request
needs the bearer token and the SellerId header. Every package processed is kept, so
a test sees what was sent more than once. It sits behind
tests.connectors.fakes.faults like the other fakes.
"""

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API = "/seller/v2"
TOKEN_PATH = "/auth/realms/maas/protocol/openid-connect/token"
CLIENT_ID, CLIENT_SECRET, SELLER_ID = "pim", "secret", "SELLER1"
TOKEN = "octopia-token"


@dataclass
class Package:
    id: str
    sheets: list[dict[str, Any]]
    polls: int = 0


def refusal(sheet: dict[str, Any]) -> list[dict[str, str]]:
    gtin = str(sheet.get("gtin") or "")
    if not (gtin.isdigit() and len(gtin) in (8, 12, 13, 14)):
        return [{"code": "ER400-6001", "message": "GTIN invalide"}]
    if not sheet.get("title"):
        return [{"code": "ER400-6067", "message": "L'attribut title est requis"}]
    return []


@dataclass
class Octopia:
    products: dict[str, dict[str, Any]] = field(default_factory=dict)  # by seller reference
    packages: dict[str, Package] = field(default_factory=dict)
    sheet_sends: Counter[str] = field(default_factory=Counter)  # sheets per seller reference
    tokens_issued: int = 0
    # Authorization headers received (a test asserts which ones reached another host).
    credentials: list[str] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(4242))

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route(f"{API}/products-integration", self.integrate, methods=["POST"]),
            Route(f"{API}/products-integration-reports", self.reports),
        ])  # fmt: skip

    def _refused(self, request: Request) -> Response | None:
        self.credentials.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "invalid_token"}, 401)
        if request.headers.get("sellerid") != SELLER_ID:
            return JSONResponse({"title": "SellerId header is required"}, 403)
        return None

    async def token(self, request: Request) -> Response:
        form = await request.form()
        given = (form.get("grant_type"), form.get("client_id"), form.get("client_secret"))
        if given != ("client_credentials", CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "unauthorized_client"}, 401)
        self.tokens_issued += 1
        return JSONResponse({"access_token": TOKEN, "expires_in": 7200, "token_type": "Bearer"})

    async def integrate(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        sheets = (await request.json())["products"]
        package = Package(str(next(self.ids)), sheets)
        self.packages[package.id] = package
        self.sheet_sends.update(s["sellerProductReference"] for s in sheets)
        for sheet in sheets:
            if not refusal(sheet):
                self.products[sheet["sellerProductReference"]] = sheet
        return JSONResponse({"packageId": package.id}, 202)

    async def reports(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        package = self.packages.get(request.query_params.get("packageId", ""))
        page, size = (int(request.query_params.get(name, 1)) for name in ("pageIndex", "pageSize"))
        if package is None or size > 100:
            return JSONResponse({"title": "Bad request"}, 400)
        package.polls += 1
        items = [report(sheet, integrated=package.polls > 1) for sheet in package.sheets]
        return JSONResponse({"items": items[(page - 1) * size : page * size],
                             "itemsPerPage": size, "currentPageIndex": page})  # fmt: skip


def report(sheet: dict[str, Any], *, integrated: bool) -> dict[str, Any]:
    """A sheet's report: in progress at the first poll of its package, then final."""
    reference = sheet["sellerProductReference"]
    if not integrated:
        return {"sellerProductReference": reference, "status": "InProgress"}
    if errors := refusal(sheet):
        return {"sellerProductReference": reference, "status": "Refused", "errors": errors}
    return {"sellerProductReference": reference, "status": "Integrated"}
