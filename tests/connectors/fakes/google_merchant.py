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
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.connectors.fakes.oauth import is_refresh_grant
from tests.connectors.fakes.upserts import Upserts
from tests.connectors.helpers import Fake, bearer

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


# --- the recording fake of the adapter's own tests ---------------------------------------

SERVICE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def google_fake(*, products_retired: bool = False) -> Fake:
    """The Merchant API (accounts, data sources, products v1) and Google's token endpoint;
    the retired Content API v2.1 answers 410 Gone, as Google does since its shutdown,
    and so does the products API when `products_retired` (a version Google retired)."""
    fake = Fake(authorized=bearer("ya29.token"))
    # Product inputs by their key, as the data source holds them; processed products
    # are listed from them (plus three made in Merchant Center by hand).
    inputs: dict[str, dict] = {
        f"fr~FR~R-{i}": {"offerId": f"R-{i}", "contentLanguage": "fr", "feedLabel": "FR",
                         "productAttributes": {"title": f"Remote {i}",
                                               "gtins": [f"400000000000{i}"],
                                               "price": {"amountMicros": "5000000",
                                                         "currencyCode": "EUR"},
                                               "shippingWeight": {"value": 250, "unit": "g"}}}
        for i in range(3)
    }  # fmt: skip

    async def token(request: Request) -> JSONResponse:
        form = urllib.parse.parse_qs((await request.body()).decode())
        if form["grant_type"] == ["refresh_token"]:
            good = form["refresh_token"] == ["1//refresh"] and form["client_secret"] == ["s"]
        else:
            head, claims, signature = form["assertion"][0].split(".")
            SERVICE_KEY.public_key().verify(
                unpadded(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(),
                hashes.SHA256(),
            )  # fmt: skip
            good = json.loads(unpadded(claims))["iss"] == "pim@project.iam.gserviceaccount.com"
        if not good:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse({"access_token": "ya29.token", "expires_in": 3599,
                             "token_type": "Bearer"})  # fmt: skip

    async def account(request: Request) -> JSONResponse:
        if request.path_params["account"] != "123456":
            return google_error(403, "PERMISSION_DENIED", "The caller does not have access")
        return JSONResponse({"name": ACCOUNT, "accountId": "123456", "accountName": "Pixee"})

    async def data_source(request: Request) -> JSONResponse:
        name = f"accounts/{request.path_params['account']}/dataSources/{request.path_params['id']}"
        if name != DATA_SOURCE:
            return google_error(404, "NOT_FOUND", f"{name} not found")
        return JSONResponse({"name": name, "dataSourceId": "777", "displayName": "PIM",
                             "input": "API", "primaryProductDataSource": {}})  # fmt: skip

    async def insert(request: Request) -> JSONResponse:
        if request.query_params.get("dataSource") != DATA_SOURCE:
            return google_error(400, "INVALID_ARGUMENT", "dataSource is required")
        body = await request.json()
        missing = [f for f in ("offerId", "contentLanguage", "feedLabel") if not body.get(f)]
        unknown = set(body) - {"offerId", "contentLanguage", "feedLabel", "productAttributes",
                               "customAttributes", "versionNumber", "legacyLocal"}  # fmt: skip
        if missing or unknown:
            return google_error(400, "INVALID_ARGUMENT", f"bad fields {missing} {sorted(unknown)}")
        attributes = body.get("productAttributes", {})
        if attributes.get("title") == "Produit 1":
            return google_error(400, "INVALID_ARGUMENT", "[gtins] Invalid value")
        if error := attribute_errors(attributes):
            return google_error(400, "INVALID_ARGUMENT", error)
        key = f"{body['contentLanguage']}~{body['feedLabel']}~{body['offerId']}"
        inputs[key] = body  # an insert replaces the input with the same key
        return JSONResponse({**body, "name": f"{ACCOUNT}/productInputs/{key}",
                             "product": f"{ACCOUNT}/products/{key}"})  # fmt: skip

    async def patch(request: Request) -> JSONResponse:
        result = await patched(request, inputs)
        if isinstance(result, JSONResponse):
            return result
        key, inputs[key] = result
        return JSONResponse({**inputs[key], "name": f"{ACCOUNT}/productInputs/{key}"})

    async def list_products(request: Request) -> JSONResponse:
        start = int(request.query_params.get("pageToken", "0"))
        size = min(int(request.query_params.get("pageSize", "25")), 2)  # pages smaller than asked
        keys = sorted(inputs)[start : start + size]
        body: dict = {"products": [{**inputs[k], "name": f"{ACCOUNT}/products/{k}",
                                    "dataSource": DATA_SOURCE} for k in keys]}  # fmt: skip
        if start + size < len(inputs):
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    async def retired(_: Request) -> JSONResponse:
        return google_error(410, "GONE", "This API version has been shut down")

    if products_retired:
        insert = patch = list_products = retired
    fake.route("/token", "POST", open=True)(token)
    fake.route("/accounts/v1/accounts/{account}")(account)
    fake.route("/datasources/v1/accounts/{account}/dataSources/{id}")(data_source)
    fake.route("/products/v1/accounts/123456/productInputs:insert", "POST")(insert)
    fake.route("/products/v1/accounts/123456/productInputs/{input}", "PATCH")(patch)
    fake.route("/products/v1/accounts/123456/products")(list_products)
    fake.route("/content/v2.1/{rest:path}", "GET", "POST")(retired)
    return fake
