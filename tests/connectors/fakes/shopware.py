"""A strict loopback Shopware 6 Admin API: the OAuth client-credentials token, the
version and the sync API, shaped from developer.shopware.com (Admin API, sync API).

A sync `upsert` of products is keyed by the id the row gives (32 lowercase hex
digits): a row sent again updates the product it made, never doubles it;
`products.writes` counts the rows processed per id. As in Shopware, the sync runs in
one transaction and refuses it whole (400, each error pointing at
`/{operation}/{index}/{field}`) for: a new product without what Shopware requires
(productNumber, name, stock, taxId, price), a productNumber another product has, a
field the product definition does not know, a malformed id or price, a tax or
currency the shop does not have. No or another
bearer: 401.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.connectors.fakes.upserts import Upserts

ACCESS_TOKEN = "sw-token"
CREDENTIALS = {"client_id": "SWIA", "client_secret": "s3"}
SYNC = "/api/_action/sync"
ID = re.compile(r"^[0-9a-f]{32}$")
# The shop's taxes and currencies, by id (a foreign key must name one).
TAX_ID = "d7b9f9b3e5a04f0e8c2f6a9c1b3d5e7f"
CURRENCY_ID = "b7d2554b0ce847cd82f3ac9bd1c0dfca"
REQUIRED = ("productNumber", "name", "stock", "taxId", "price")
FIELDS = {"id", "productNumber", "name", "description", "active", "taxId", "stock", "ean",
          "price", "weight"}  # fmt: skip
PRICE_FIELDS = {"currencyId", "gross", "net", "linked"}


def violation(pointer: str, code: str, detail: str) -> dict[str, Any]:
    return {"code": code, "status": "400", "title": "Bad Request", "detail": detail,
            "source": {"pointer": pointer}}  # fmt: skip


@dataclass
class Shop:
    products: Upserts = field(default_factory=Upserts)
    token_requests: int = 0

    def row_errors(self, pointer: str, row: dict[str, Any], numbers: dict[str, str]) -> list[dict[str, Any]]:  # fmt: skip
        if not ID.match(str(row.get("id", ""))):
            return [
                violation(f"{pointer}/id", "FRAMEWORK__INVALID_UUID", "Value is not a valid UUID")
            ]
        found = [violation(f"{pointer}/{name}", "FRAMEWORK__WRITE_UNKNOWN_FIELD",
                           f"The property \"{name}\" is not allowed.")
                 for name in sorted(set(row) - FIELDS)]  # fmt: skip
        if row["id"] not in self.products.records:
            found += [violation(f"{pointer}/{name}", "VIOLATION::IS_BLANK_ERROR",
                                "This value should not be blank.")
                      for name in REQUIRED if row.get(name) in (None, "", [])]  # fmt: skip
        if row.get("taxId") not in (None, TAX_ID):
            found.append(violation(f"{pointer}/taxId", "FRAMEWORK__WRITE_CONSTRAINT_VIOLATION",
                                   "The tax does not exist."))  # fmt: skip
        for price in row.get("price") or []:
            if set(price) != PRICE_FIELDS or price["currencyId"] != CURRENCY_ID:
                found.append(violation(f"{pointer}/price", "VIOLATION::MISSING_FIELD",
                                       "currencyId of a currency, gross, net and linked are required"))  # fmt: skip
        number = row.get("productNumber")
        if number is not None and numbers.setdefault(number, row["id"]) != row["id"]:
            found.append(violation(f"{pointer}/productNumber", "CONTENT__DUPLICATE_PRODUCT_NUMBER",
                                   f"Product with number \"{number}\" already exists."))  # fmt: skip
        return found

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            self.token_requests += 1
            if await request.json() != {"grant_type": "client_credentials", **CREDENTIALS}:
                return JSONResponse({"errors": [{"code": "0", "status": "401",
                                                 "title": "Unauthorized"}]}, 401)  # fmt: skip
            return JSONResponse({"token_type": "Bearer", "expires_in": 600,
                                 "access_token": ACCESS_TOKEN})  # fmt: skip

        def refused(request: Request) -> JSONResponse | None:
            if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                return JSONResponse({"errors": [{"code": "9", "status": "401", "title": "Unauthorized",
                                                 "detail": "Access token could not be verified."}]}, 401)  # fmt: skip
            return None

        async def version(request: Request) -> JSONResponse:
            return refused(request) or JSONResponse({"version": "6.6.9.0"})

        async def sync(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            operations = await request.json()
            numbers = {r["productNumber"]: key for key, r in self.products.records.items()}
            found: list[dict[str, Any]] = []
            for name, operation in operations.items():
                if (operation.get("entity"), operation.get("action")) != ("product", "upsert"):
                    found.append(violation(f"/{name}", "FRAMEWORK__INVALID_SYNC_OPERATION",
                                           "product upserts only in this fake"))  # fmt: skip
                    continue
                for index, row in enumerate(operation.get("payload") or []):
                    found += self.row_errors(f"/{name}/{index}", row, numbers)
            if found:  # one transaction: nothing written
                return JSONResponse({"errors": found}, 400)
            written = []
            for operation in operations.values():
                for row in operation["payload"]:
                    self.products.upsert(
                        row["id"], {**self.products.records.get(row["id"], {}), **row}
                    )
                    written.append(row["id"])
            return JSONResponse({"data": {"product": written}, "deleted": [], "notFound": []})

        return Starlette(routes=[
            Route("/api/oauth/token", token, methods=["POST"]),
            Route("/api/_info/version", version),
            Route(SYNC, sync, methods=["POST"]),
        ])  # fmt: skip
