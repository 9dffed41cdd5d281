"""A strict loopback Selling Partner API: Login with Amazon's token exchange, the
Sellers API's marketplace participations and the Listings Items API 2021-08-01 PUT and
PATCH, shaped from developer-docs.amazon.com/sp-api.

A PUT of a listing item is an upsert by seller SKU: the listing is replaced, never
doubled; a PATCH replaces attributes of an existing listing (404 otherwise);
`listings.writes` counts the PUTs and PATCHes processed per SKU. Refused as Amazon
refuses them: a missing, unknown or expired access token (403 Unauthorized: the
SP-API does not say it with a 401), another seller or marketplace, a body with
fields the API does not know (400 InvalidInput); a submission lacking what the
LISTING requirements need is answered INVALID with its issues and not stored.
"""

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.connectors.fakes.oauth import is_refresh_grant
from tests.connectors.fakes.upserts import Upserts

SELLER = "A2SELLER"
MARKETPLACE = "A13V1IB3VIYZZH"
ACCESS_TOKEN = "Atza|token"
CREDENTIALS = {"client_id": "amzn1.application-oa2-client.x", "client_secret": "secret",
               "refresh_token": "Atzr|refresh"}  # fmt: skip
LISTINGS = "/listings/2021-08-01/items"
# What a LISTING of product type PRODUCT needs (the product type definition's "required").
REQUIRED = ("item_name", "brand", "externally_assigned_product_identifier", "condition_type")
REQUIREMENTS = {"LISTING", "LISTING_PRODUCT_ONLY", "LISTING_OFFER_ONLY"}
# Attributes addressed to no marketplace in particular.
ANY_MARKETPLACE = {"fulfillment_availability"}


def errors(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "message": message, "details": ""}]}, status)


def issues_of(attributes: dict[str, Any]) -> list[dict[str, str]]:
    issues = [{"code": "90220", "message": f"'{name}' is required but not supplied.",
               "severity": "ERROR", "attributeNames": [name]}
              for name in REQUIRED if not attributes.get(name)]  # fmt: skip
    for name, values in attributes.items():
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            issues.append({"code": "4000001", "message": f"'{name}' must be an array of objects",
                           "severity": "ERROR", "attributeNames": [name]})  # fmt: skip
        elif name not in ANY_MARKETPLACE and any(
            v.get("marketplace_id") != MARKETPLACE for v in values
        ):
            issues.append({"code": "4000003", "message": f"'{name}': unknown marketplace_id",
                           "severity": "ERROR", "attributeNames": [name]})  # fmt: skip
    return issues


@dataclass
class SellerCentral:
    """`token_calls`: calls an access token serves before Amazon says it expired (403
    Unauthorized, as the SP-API answers an expired token); each token request issues
    a new one."""

    token_calls: int | None = None
    listings: Upserts = field(default_factory=Upserts)
    token_requests: int = 0
    used: Counter[str] = field(default_factory=Counter)  # calls served by each token issued
    submissions: Any = field(default_factory=lambda: itertools.count(1))

    def issue(self) -> str:
        token = (
            ACCESS_TOKEN if self.token_calls is None else f"{ACCESS_TOKEN}-{self.token_requests}"
        )
        self.used[token] += 0
        return token

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            self.token_requests += 1
            if not await is_refresh_grant(request, CREDENTIALS):
                return JSONResponse({"error": "invalid_grant",
                                     "error_description": "The request has an invalid grant"}, 400)  # fmt: skip
            return JSONResponse({"access_token": self.issue(), "token_type": "bearer",
                                 "expires_in": 3600, "refresh_token": CREDENTIALS["refresh_token"]})  # fmt: skip

        def refused(request: Request) -> JSONResponse | None:
            token = request.headers.get("x-amz-access-token", "")
            if token not in self.used:
                return errors(403, "Unauthorized", "Access to requested resource is denied.")
            self.used[token] += 1
            if self.token_calls is not None and self.used[token] > self.token_calls:
                return JSONResponse({"errors": [{
                    "code": "Unauthorized", "message": "Access to requested resource is denied.",
                    "details": "The access token you provided has expired."}]}, 403)  # fmt: skip
            return None

        async def participations(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            return JSONResponse({"payload": [{
                "marketplace": {"id": MARKETPLACE, "name": "Amazon.fr", "countryCode": "FR"},
                "participation": {"isParticipating": True, "hasSuspendedListings": False}}]})  # fmt: skip

        async def item(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            if request.path_params["seller"] != SELLER:
                return errors(403, "Unauthorized", "Access to requested resource is denied.")
            if request.query_params.get("marketplaceIds") != MARKETPLACE:
                return errors(400, "InvalidInput", "marketplaceIds is required")
            body, sku = await request.json(), request.path_params["sku"]
            if request.method == "PATCH":
                return patch(sku, body)
            unknown = set(body) - {"productType", "requirements", "attributes"}
            if unknown or not body.get("productType") or not isinstance(body.get("attributes"), dict):  # fmt: skip
                return errors(400, "InvalidInput", f"invalid body {sorted(unknown)}")
            if body.get("requirements", "LISTING") not in REQUIREMENTS:
                return errors(400, "InvalidInput", "requirements")
            return submitted(sku, body)

        def patch(sku: str, body: dict[str, Any]) -> JSONResponse:
            patches = body.get("patches") or []
            if (
                set(body) - {"productType", "patches"}
                or not patches
                or not all(
                    p.get("op") in ("add", "replace", "delete")
                    and str(p.get("path", "")).startswith("/attributes/")
                    for p in patches
                )
            ):
                return errors(400, "InvalidInput", "invalid patches")
            if sku not in self.listings.records:
                return errors(404, "NOT_FOUND", f"SKU {sku} not found for seller {SELLER}")
            listing = self.listings.records[sku]
            attributes = dict(listing["attributes"])
            for p in patches:
                name = p["path"].removeprefix("/attributes/")
                if p["op"] == "delete":
                    attributes.pop(name, None)
                else:
                    attributes[name] = p["value"]
            return submitted(sku, {**listing, "attributes": attributes})

        def submitted(sku: str, listing: dict[str, Any]) -> JSONResponse:
            answer = {"sku": sku, "submissionId": f"sub-{next(self.submissions)}"}
            if issues := issues_of(listing["attributes"]):
                return JSONResponse({**answer, "status": "INVALID", "issues": issues})
            self.listings.upsert(sku, listing)
            return JSONResponse({**answer, "status": "ACCEPTED", "issues": []})

        return Starlette(routes=[
            Route("/auth/o2/token", token, methods=["POST"]),
            Route("/sellers/v1/marketplaceParticipations", participations),
            Route(LISTINGS + "/{seller}/{sku}", item, methods=["PUT", "PATCH"]),
        ])  # fmt: skip
