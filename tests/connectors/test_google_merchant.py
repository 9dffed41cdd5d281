"""Google Merchant Center adapter against a fake Merchant API (products v1) and OAuth2
token endpoint; the fake answers 410 Gone on the retired Content API v2.1. Against the
strict one of tests.connectors.fakes.google_merchant: each product once through the
exactly-once matrix, expired tokens and redirects."""

import json
import uuid
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from connectors.http import ConnectorUnusable, PlatformError
from tests.connectors.exactly_once import outgoing
from tests.connectors.fakes.faults import Faults
from tests.connectors.fakes.google_merchant import (
    DATA_SOURCE,
    INSERT,
    SERVICE_KEY,
    MerchantCenter,
    google_fake,
)
from tests.connectors.helpers import Fake, check_error_mapping, connected, products
from tests.connectors.upsert_matrix import (
    CHECKS,
    UpsertPlatform,
    served,
)


def refresh_config(base: str) -> ConnectorConfig:
    return ConnectorConfig(
        "google_merchant", base,
        {"client_id": "c", "client_secret": "s", "refresh_token": "1//refresh"},
        options={"merchant_id": "123456", "data_source": "777", "token_url": f"{base}/token",
                 "product_url": "https://shop.example/p/{sku}"},
    )  # fmt: skip


def inserts(fake: Fake) -> list:
    return fake.to("/products/v1/accounts/123456/productInputs:insert", "POST")


async def test_google_merchant_end_to_end_on_the_merchant_api() -> None:
    fake = google_fake()
    async with connected(fake, refresh_config) as adapter:
        assert await adapter.test() == "Merchant Center Pixee"

        batch = products(3)
        outcomes = await adapter.push_products(batch)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "fr~FR~SKU-000"), (False, None), (True, "fr~FR~SKU-002"),
        ]  # fmt: skip
        assert outcomes[1].error == "[gtins] Invalid value"
        sent = next(r for r in inserts(fake) if r.json()["offerId"] == "SKU-000")
        assert dict(sent.query) == {"dataSource": DATA_SOURCE}
        assert sent.json() == {
            "offerId": "SKU-000", "contentLanguage": "fr", "feedLabel": "FR",
            "productAttributes": {
                "title": "Produit 0", "description": "Description 0", "condition": "NEW",
                "availability": "OUT_OF_STOCK", "link": "https://shop.example/p/SKU-000",
                "gtins": ["3760000000000"], "brand": "Pixee",
                "price": {"amountMicros": "10000000", "currencyCode": "EUR"},
                "shippingWeight": {"value": 0.5, "unit": "kg"},
            },
        }  # fmt: skip
        # One token for the whole session; nothing sent to the retired Content API.
        assert len(fake.to("/token", "POST")) == 1
        assert not [r for r in fake.received if r.path.startswith("/content/")]

        pages = [page async for page in adapter.pull_products()]
        assert [len(page) for page in pages] == [2, 2, 1]
        remote = {p.sku: p for page in pages for p in page}
        assert (remote["R-2"].external_id, remote["R-2"].ean, remote["R-2"].price,
                remote["R-2"].weight) == ("fr~FR~R-2", "4000000000002", 5.0, 0.25)  # fmt: skip
        assert remote["SKU-002"].external_id == outcomes[2].external_id

        stock = await adapter.push_stock([StockLevel(batch[0].product_id, "SKU-000", 4)])
        assert stock[0].ok
        (patch,) = fake.to("/products/v1/accounts/123456/productInputs/ZnJ-RlJ-U0tVLTAwMA", "PATCH")
        assert dict(patch.query) == {"dataSource": DATA_SOURCE,
                               "updateMask": "productAttributes.availability"}  # fmt: skip
        assert patch.json() == {"productAttributes": {"availability": "IN_STOCK"}}

        prices = await adapter.push_prices(
            [PriceLevel(batch[2].product_id, "SKU-002", 19.9, external_id="fr~FR~SKU-002")]
        )
        assert prices[0].ok
        pages = [page async for page in adapter.pull_products()]
        assert {p.sku: p.price for page in pages for p in page}["SKU-002"] == 19.9

        await check_error_mapping(fake, adapter.test, throttled={}, wait=60.0)


async def test_google_merchant_reports_a_product_never_pushed_when_updating_its_stock() -> None:
    fake = google_fake()
    async with connected(fake, refresh_config) as adapter:
        (outcome,) = await adapter.push_stock([StockLevel(uuid.uuid4(), "NEVER", 1)])
    assert not outcome.ok and outcome.error and "not found" in outcome.error


async def test_google_merchant_reports_a_retired_api_as_the_connectors_failure() -> None:
    fake = google_fake()
    gone = {"error": {"code": 410, "message": "API version retired", "status": "GONE"}}
    async with connected(fake, refresh_config) as adapter:
        assert await adapter.test()
        fake.fail(410, body=gone)
        with pytest.raises(ConnectorUnusable, match="retirée") as caught:
            await adapter.push_products(products(5))
        assert not caught.value.transient

        fake.fail(410, body=gone)
        with pytest.raises(ConnectorUnusable, match="retirée"):
            await adapter.test()


async def test_google_merchant_service_account_signs_its_token_request() -> None:
    fake = google_fake()
    pem = SERVICE_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip

    def config(base: str) -> ConnectorConfig:
        account = {"type": "service_account", "client_email": "pim@project.iam.gserviceaccount.com",
                   "private_key": pem, "token_uri": f"{base}/token"}  # fmt: skip
        return ConnectorConfig("google_merchant", base,
                               {"service_account_json": json.dumps(account)},
                               options={"merchant_id": "123456", "data_source": DATA_SOURCE})  # fmt: skip

    async with connected(fake, config) as adapter:
        assert await adapter.test() == "Merchant Center Pixee"
    assert fake.to("/token", "POST")


async def test_google_merchant_refuses_a_merchant_the_token_cannot_reach() -> None:
    fake = google_fake()

    def config(base: str) -> ConnectorConfig:
        return ConnectorConfig("google_merchant", base, refresh_config(base).credentials,
                               options={"merchant_id": "999", "data_source": "777",
                                        "token_url": f"{base}/token"})  # fmt: skip

    async with connected(fake, config) as adapter:
        with pytest.raises(PlatformError, match="999"):
            await adapter.test()


async def test_google_merchant_inserts_each_product_of_a_chunk_of_100() -> None:
    fake = google_fake()
    async with connected(fake, refresh_config) as adapter:
        outcomes = await adapter.push_products(products(100))
        again = await adapter.push_products(products(100))
    assert [o.ok for o in outcomes] == [n != 1 for n in range(100)]
    assert sorted(r.json()["offerId"] for r in inserts(fake)) == sorted(
        f"SKU-{n:03}" for n in range(100) for _ in range(2)
    )
    # An insert replaces the input with the same key: sending again makes no second product.
    assert [o.external_id for o in again] == [o.external_id for o in outcomes]
    assert fake.most_in_flight > 1


async def test_google_merchant_asks_for_its_data_source_before_any_call() -> None:
    fake = google_fake()

    def config(base: str) -> ConnectorConfig:
        return ConnectorConfig("google_merchant", base, refresh_config(base).credentials,
                               options={"merchant_id": "123456", "token_url": f"{base}/token"})  # fmt: skip

    async with connected(fake, config) as adapter:
        with pytest.raises(PlatformError, match="data_source"):
            await adapter.test()
    assert fake.received == []


# Product inputs are upserts by language, feed label and offer id: a lost answer costs
# one insert again, never a product.
MERCHANT_CENTER = UpsertPlatform(
    fake=MerchantCenter, upserts=lambda fake: fake.inputs, config=refresh_config,
    write=INSERT, method="POST", rows_per_write=1, token_header="authorization",
    login="/token", expire_after=100, key=lambda product: f"fr~FR~{product.sku}",
    update="/productInputs/", update_method="PATCH",
)  # fmt: skip


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_google_merchant_keeps_each_product_once(check: str) -> None:
    await CHECKS[check](MERCHANT_CENTER)


async def test_an_offer_id_google_refuses_fails_that_product_alone() -> None:
    merchant_center, products = MerchantCenter(), outgoing(3)
    products[1] = replace(products[1], sku="X" * 51)  # offer ids have 50 characters at most
    async with served(MERCHANT_CENTER, merchant_center, Faults()) as (adapter, _base):
        outcomes = await adapter.push_products(products)
    assert [(o.ok, o.error) for o in outcomes] == [
        (True, None), (False, "[offerId] too long"), (True, None),
    ]  # fmt: skip
    assert set(merchant_center.inputs.records) == {f"fr~FR~{p.sku}" for p in products[::2]}
