"""A strict loopback Merchant API (products v1) and Google OAuth2 token endpoint,
shaped from developers.google.com/merchant/api (products_v1 REST reference).

`productInputs:insert` is an upsert keyed by content language, feed label and offer id
within the data source: the input is replaced, never doubled; `inputs.writes` counts
the inserts and patches processed per key. Refused as Google refuses them: no or
another bearer (401 UNAUTHENTICATED), another data source, missing or unknown fields,
attributes of the wrong shape (400 INVALID_ARGUMENT). The retired Content API v2.1
answers 410.
"""

import base64
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.connectors.fakes.oauth import is_refresh_grant
from tests.connectors.fakes.upserts import Upserts

MERCHANT = "123456"
ACCOUNT = f"accounts/{MERCHANT}"
DATA_SOURCE = f"{ACCOUNT}/dataSources/777"
ACCESS_TOKEN = "ya29.token"
CREDENTIALS = {"client_id": "c", "client_secret": "s", "refresh_token": "1//refresh"}
INSERT = f"/products/v1/{ACCOUNT}/productInputs:insert"
AVAILABILITY = {"IN_STOCK", "OUT_OF_STOCK", "PREORDER", "LIMITED_AVAILABILITY", "BACKORDER"}
INPUT_FIELDS = {"offerId", "contentLanguage", "feedLabel", "productAttributes",
                "customAttributes", "versionNumber", "legacyLocal"}  # fmt: skip
OFFER_ID_MAX = 50


def unpadded(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def google_error(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, code)


def input_key(segment: str) -> str:
    """A product input id as the Merchant API reads it: tilde form, or unpadded base64url."""
    return segment if "~" in segment else unpadded(segment).decode()


def attribute_errors(attributes: dict[str, Any]) -> str | None:
    """The checks the Merchant API makes on the attributes the adapter sends."""
    price = attributes.get("price")
    if price is not None and (
        set(price) != {"amountMicros", "currencyCode"} or not str(price["amountMicros"]).isdigit()
    ):
        return "[price] amountMicros and currencyCode expected"
    if attributes.get("availability", "IN_STOCK") not in AVAILABILITY:
        return "[availability] invalid enum value"
    if not isinstance(attributes.get("gtins", []), list):
        return "[gtins] must be a list"
    return None


def input_errors(body: dict[str, Any]) -> str | None:
    missing = [f for f in ("offerId", "contentLanguage", "feedLabel") if not body.get(f)]
    unknown = set(body) - INPUT_FIELDS
    if missing or unknown:
        return f"bad fields {missing} {sorted(unknown)}"
    if len(body["offerId"]) > OFFER_ID_MAX:
        return "[offerId] too long"
    return attribute_errors(body.get("productAttributes") or {})


async def patched(
    request: Request, inputs: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]] | JSONResponse:
    """What `PATCH …/productInputs/{id}?updateMask=…` makes of one of `inputs`, and its
    key; or Google's refusal. A field in the mask and not in the body is deleted."""
    key = input_key(request.path_params["input"])
    if request.query_params.get("dataSource") != DATA_SOURCE:
        return google_error(400, "INVALID_ARGUMENT", "dataSource is required")
    if key not in inputs:
        return google_error(404, "NOT_FOUND", f"{ACCOUNT}/productInputs/{key} not found")
    given = (await request.json()).get("productAttributes", {})
    if error := attribute_errors(given):
        return google_error(400, "INVALID_ARGUMENT", error)
    attributes = dict(inputs[key].get("productAttributes") or {})
    for path in request.query_params["updateMask"].split(","):
        field = path.removeprefix("productAttributes.")
        if field in given:
            attributes[field] = given[field]
        else:
            attributes.pop(field, None)
    return key, {**inputs[key], "productAttributes": attributes}


@dataclass
class MerchantCenter:
    inputs: Upserts = field(default_factory=Upserts)
    token_requests: int = 0

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            self.token_requests += 1
            if not await is_refresh_grant(request, CREDENTIALS):
                return JSONResponse({"error": "invalid_grant"}, 400)
            return JSONResponse({"access_token": ACCESS_TOKEN, "expires_in": 3599,
                                 "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/content"})  # fmt: skip

        def refused(request: Request) -> JSONResponse | None:
            if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                return google_error(401, "UNAUTHENTICATED",
                                    "Request had invalid authentication credentials.")  # fmt: skip
            return None

        async def account(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            return JSONResponse({"name": ACCOUNT, "accountId": MERCHANT, "accountName": "Pixee"})

        async def data_source(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            return JSONResponse({"name": DATA_SOURCE, "dataSourceId": "777", "input": "API",
                                 "primaryProductDataSource": {}})  # fmt: skip

        async def insert(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            if request.query_params.get("dataSource") != DATA_SOURCE:
                return google_error(400, "INVALID_ARGUMENT", "dataSource is required")
            body = await request.json()
            if error := input_errors(body):
                return google_error(400, "INVALID_ARGUMENT", error)
            key = f"{body['contentLanguage']}~{body['feedLabel']}~{body['offerId']}"
            self.inputs.upsert(key, body)
            return JSONResponse({**body, "name": f"{ACCOUNT}/productInputs/{key}",
                                 "product": f"{ACCOUNT}/products/{key}"})  # fmt: skip

        async def patch(request: Request) -> JSONResponse:
            if answer := refused(request):
                return answer
            result = await patched(request, self.inputs.records)
            if isinstance(result, JSONResponse):
                return result
            key, product_input = result
            self.inputs.upsert(key, product_input)
            return JSONResponse({**product_input, "name": f"{ACCOUNT}/productInputs/{key}"})

        async def retired(_: Request) -> JSONResponse:
            return google_error(410, "GONE", "This API version has been shut down")

        return Starlette(routes=[
            Route("/token", token, methods=["POST"]),
            Route(f"/accounts/v1/{ACCOUNT}", account),
            Route(f"/datasources/v1/{DATA_SOURCE}", data_source),
            Route(INSERT, insert, methods=["POST"]),
            Route(f"/products/v1/{ACCOUNT}/productInputs/{{input}}", patch, methods=["PATCH"]),
            Route("/content/v2.1/{rest:path}", retired, methods=["GET", "POST"]),
        ])  # fmt: skip
