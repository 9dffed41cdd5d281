"""Google Merchant Center adapter against a fake Content API v2.1 and OAuth2 token endpoint."""

import base64
import json
import urllib.parse

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from connectors.http import PlatformError
from tests.fakes_platforms2 import Fake, bearer, check_error_mapping, connected, products

SERVICE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def unpadded(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def google_fake() -> tuple[Fake, list[Route]]:
    fake = Fake(authorized=bearer("ya29.token"), open_paths=frozenset({"/token"}))
    catalog = [
        {"id": f"online:fr:FR:R-{i}", "offerId": f"R-{i}", "title": f"Remote {i}",
         "gtin": f"400000000000{i}", "price": {"value": "5.00", "currency": "EUR"}}
        for i in range(3)
    ]  # fmt: skip

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

    async def authinfo(_: Request) -> JSONResponse:
        return JSONResponse({"kind": "content#accountsAuthInfoResponse",
                             "accountIdentifiers": [{"merchantId": "123456"}]})  # fmt: skip

    async def custombatch(request: Request) -> JSONResponse:
        entries = []
        for entry in (await request.json())["entries"]:
            assert entry["merchantId"] == "123456"
            product = entry["product"]
            if product.get("title") == "Produit 1":
                entries.append(
                    {
                        "batchId": entry["batchId"],
                        "errors": {
                            "code": 400,
                            "message": "[gtin] invalid",
                            "errors": [{"reason": "invalid", "message": "[gtin] Invalid value"}],
                        },
                    }
                )
                continue
            pid = entry.get("productId") or f"online:fr:FR:{product['offerId']}"
            entries.append(
                {
                    "batchId": entry["batchId"],
                    "product": {**product, "id": pid, "kind": "content#product"},
                }
            )
        return JSONResponse({"kind": "content#productsCustomBatchResponse", "entries": entries})

    async def list_products(request: Request) -> JSONResponse:
        start = int(request.query_params.get("pageToken", "0"))
        body: dict = {"resources": catalog[start : start + 2]}
        if start + 2 < len(catalog):
            body["nextPageToken"] = str(start + 2)
        return JSONResponse(body)

    return fake, [
        Route("/token", token, methods=["POST"]),
        Route("/content/v2.1/accounts/authinfo", authinfo),
        Route("/content/v2.1/products/batch", custombatch, methods=["POST"]),
        Route("/content/v2.1/123456/products", list_products),
    ]


def refresh_config(base: str) -> ConnectorConfig:
    return ConnectorConfig(
        "google_merchant", base,
        {"client_id": "c", "client_secret": "s", "refresh_token": "1//refresh"},
        options={"merchant_id": "123456", "token_url": f"{base}/token",
                 "product_url": "https://shop.example/p/{sku}"},
    )  # fmt: skip


async def test_google_merchant_end_to_end() -> None:
    fake, routes = google_fake()
    async with connected(fake, routes, refresh_config) as adapter:
        assert await adapter.test() == "Merchant Center 123456"

        batch = products(3)
        outcomes = await adapter.push_products(batch)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "online:fr:FR:SKU-0"), (False, None), (True, "online:fr:FR:SKU-2"),
        ]  # fmt: skip
        assert outcomes[1].error == "[gtin] Invalid value"
        sent = fake.calls("POST", "/content/v2.1/products/batch")[0].json()["entries"][0]
        assert sent == {
            "batchId": 0, "merchantId": "123456", "method": "insert",
            "product": {"offerId": "SKU-0", "title": "Produit 0", "description": "Description 0",
                        "contentLanguage": "fr", "targetCountry": "FR", "feedLabel": "FR",
                        "channel": "online", "condition": "new", "availability": "out of stock",
                        "link": "https://shop.example/p/SKU-0", "gtin": "3000000000000",
                        "brand": "Pixee", "price": {"value": "10.00", "currency": "EUR"},
                        "shippingWeight": {"value": 0.5, "unit": "kg"}},
        }  # fmt: skip
        # One token for the whole session.
        assert len(fake.calls("POST", "/token")) == 1

        pages = [page async for page in adapter.pull_products()]
        assert [len(page) for page in pages] == [2, 1]
        assert (pages[1][0].sku, pages[1][0].ean, pages[1][0].price) == (
            "R-2",
            "4000000000002",
            5.0,
        )

        stock = await adapter.push_stock([StockLevel(batch[0].product_id, "SKU-0", 4)])
        assert stock[0].ok
        entry = fake.calls("POST", "/content/v2.1/products/batch")[-1].json()["entries"][0]
        assert entry == {"method": "update", "productId": "online:fr:FR:SKU-0",
                         "updateMask": "availability", "product": {"availability": "in stock"},
                         "batchId": 0, "merchantId": "123456"}  # fmt: skip

        prices = await adapter.push_prices(
            [PriceLevel(batch[2].product_id, "SKU-2", 19.9, external_id="online:fr:FR:SKU-2")]
        )
        assert prices[0].ok
        entry = fake.calls("POST", "/content/v2.1/products/batch")[-1].json()["entries"][0]
        assert (entry["updateMask"], entry["product"]) == (
            "price",
            {"price": {"value": "19.90", "currency": "EUR"}},
        )

        quota = JSONResponse({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, 429)
        await check_error_mapping(fake, adapter.test, quota, expected_wait=60.0)


async def test_google_merchant_service_account_signs_its_token_request() -> None:
    fake, routes = google_fake()
    pem = SERVICE_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip

    def config(base: str) -> ConnectorConfig:
        account = {"type": "service_account", "client_email": "pim@project.iam.gserviceaccount.com",
                   "private_key": pem, "token_uri": f"{base}/token"}  # fmt: skip
        return ConnectorConfig("google_merchant", base,
                               {"service_account_json": json.dumps(account)},
                               options={"merchant_id": "123456"})  # fmt: skip

    async with connected(fake, routes, config) as adapter:
        assert await adapter.test() == "Merchant Center 123456"
    assert fake.calls("POST", "/token")


async def test_google_merchant_refuses_a_merchant_the_token_cannot_reach() -> None:
    fake, routes = google_fake()

    def config(base: str) -> ConnectorConfig:
        return ConnectorConfig("google_merchant", base, refresh_config(base).credentials,
                               options={"merchant_id": "999", "token_url": f"{base}/token"})  # fmt: skip

    async with connected(fake, routes, config) as adapter:
        with pytest.raises(PlatformError, match="999"):
            await adapter.test()


async def test_google_merchant_sends_a_chunk_of_100_in_one_custombatch() -> None:
    fake, routes = google_fake()
    async with connected(fake, routes, refresh_config) as adapter:
        outcomes = await adapter.push_products(products(100))
    assert [o.ok for o in outcomes] == [n != 1 for n in range(100)]
    (batch,) = fake.calls("POST", "/content/v2.1/products/batch")
    assert [e["batchId"] for e in batch.json()["entries"]] == list(range(100))
