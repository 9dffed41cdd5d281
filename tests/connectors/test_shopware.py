"""Shopware 6 adapter against a fake Admin API (OAuth token, sync endpoint, search),
and against the strict one of tests.connectors.fakes.shopware: each product once
through the exactly-once matrix, expired tokens and redirects."""

from dataclasses import replace

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from tests.connectors.exactly_once import outgoing
from tests.connectors.fakes.faults import Faults
from tests.connectors.fakes.shopware import SYNC, TAX_ID, Shop
from tests.connectors.helpers import Fake, bearer, check_error_mapping, connected, products
from tests.connectors.upsert_matrix import (
    CHECKS,
    UpsertPlatform,
    served,
)

EUR = "b7d2554b0ce847cd82f3ac9bd1c0dfca"


def shopware_fake() -> Fake:
    fake = Fake(authorized=bearer("sw-token"))
    remote = [
        {"id": f"{i:032x}", "productNumber": f"R-{i}", "ean": f"700000000000{i}", "name": None,
         "translated": {"name": f"Remote {i}"}, "stock": i, "active": True,
         "price": [{"currencyId": EUR, "gross": 9.9, "net": 8.25, "linked": True}]}
        for i in range(150)
    ]  # fmt: skip

    async def token(request: Request) -> JSONResponse:
        body = await request.json()
        if body != {"grant_type": "client_credentials", "client_id": "SWIA", "client_secret": "s3"}:
            return JSONResponse({"errors": [{"code": "invalid_client"}]}, 401)
        return JSONResponse({"token_type": "Bearer", "expires_in": 600, "access_token": "sw-token"})

    async def version(_: Request) -> JSONResponse:
        return JSONResponse({"version": "6.6.9.0"})

    async def sync(request: Request) -> JSONResponse:
        operation = (await request.json())["pim-products"]
        assert operation["entity"] == "product" and operation["action"] == "upsert"
        errors = [
            {"code": "VIOLATION::IS_BLANK_ERROR", "status": "400", "detail": "This value should not be blank.",
             "source": {"pointer": f"/pim-products/{n}/name"}}
            for n, row in enumerate(operation["payload"]) if row.get("name") == ""
        ]  # fmt: skip
        if errors:
            return JSONResponse({"errors": errors}, 400)
        ids = [row["id"] for row in operation["payload"]]
        return JSONResponse({"data": {"product": ids}, "deleted": [], "notFound": []})

    async def search(request: Request) -> JSONResponse:
        body = await request.json()
        assert body["total-count-mode"] == 1
        start = (body["page"] - 1) * body["limit"]
        return JSONResponse({"total": len(remote), "data": remote[start : start + body["limit"]]})

    fake.route("/api/oauth/token", "POST", open=True)(token)
    fake.route("/api/_info/version")(version)
    fake.route("/api/_action/sync", "POST")(sync)
    fake.route("/api/search/product", "POST")(search)
    return fake


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig("shopware", base, {"client_id": "SWIA", "client_secret": "s3"},
                           options={"tax_id": TAX_ID})  # fmt: skip


async def test_shopware_end_to_end() -> None:
    fake = shopware_fake()
    async with connected(fake, config) as adapter:
        assert await adapter.test() == "Shopware 6.6.9.0"

        batch = products(3)
        batch[1] = replace(batch[1], name="")
        batch[2] = replace(batch[2], external_id="f" * 32)
        outcomes = await adapter.push_products(batch)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, batch[0].product_id.hex), (False, None), (True, "f" * 32),
        ]  # fmt: skip
        assert outcomes[1].error == "This value should not be blank."
        first, again = fake.to("/api/_action/sync", "POST")
        assert first.headers["indexing-behavior"] == "use-queue-indexing"
        assert first.json()["pim-products"]["payload"][0] == {
            "id": batch[0].product_id.hex, "productNumber": "SKU-000", "name": "Produit 0",
            "description": "Description 0", "active": True, "taxId": TAX_ID, "stock": 0,
            "ean": "3760000000000", "weight": 0.5,
            "price": [{"currencyId": EUR, "gross": 10.0, "net": 8.3333, "linked": True}],
        }  # fmt: skip
        # The refused row is left out when the others are sent again.
        assert [r["productNumber"] for r in again.json()["pim-products"]["payload"]] == [
            "SKU-000",
            "SKU-002",
        ]

        pages = [page async for page in adapter.pull_products()]
        assert [len(page) for page in pages] == [100, 50]
        assert (pages[1][0].sku, pages[1][0].name, pages[1][0].price) == (
            "R-100",
            "Remote 100",
            9.9,
        )

        stock = await adapter.push_stock([StockLevel(batch[0].product_id, "SKU-000", 3)])
        assert stock[0].ok
        assert fake.to("/api/_action/sync", "POST")[-1].json()["pim-products"]["payload"] == [
            {"id": batch[0].product_id.hex, "stock": 3}
        ]
        prices = await adapter.push_prices([PriceLevel(batch[2].product_id, "SKU-002", 24.0,
                                                       external_id="f" * 32)])  # fmt: skip
        assert prices[0].ok
        assert fake.to("/api/_action/sync", "POST")[-1].json()["pim-products"]["payload"] == [
            {
                "id": "f" * 32,
                "price": [{"currencyId": EUR, "gross": 24.0, "net": 20.0, "linked": True}],
            }
        ]
        assert len(fake.to("/api/oauth/token", "POST")) == 1

        await check_error_mapping(fake, adapter.test, throttled={"Retry-After": "3"}, wait=3.0)


async def test_shopware_sends_a_chunk_of_100_in_one_sync() -> None:
    fake = shopware_fake()
    async with connected(fake, config) as adapter:
        outcomes = await adapter.push_products(products(100))
    assert all(o.ok for o in outcomes) and len(outcomes) == 100
    (sync,) = fake.to("/api/_action/sync", "POST")
    assert len(sync.json()["pim-products"]["payload"]) == 100


# Products are upserted by our UUID: a lost answer costs one sync again, never a product.
SHOP = UpsertPlatform(
    fake=Shop, upserts=lambda fake: fake.products, config=config, write=SYNC,
    method="POST", rows_per_write=100, token_header="authorization",
    login="/api/oauth/token", expire_after=1, key=lambda product: product.product_id.hex,
    update=SYNC, update_method="POST",
)  # fmt: skip


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_shopware_keeps_each_product_once(check: str) -> None:
    await CHECKS[check](SHOP)


async def test_a_product_number_shopware_already_has_fails_that_product_alone() -> None:
    """Made by hand in the administration under an id of Shopware's: the sync is
    refused whole, the product with that number fails, the others are sent again."""
    shop, products = Shop(), outgoing(3)
    shop.products.upsert("a" * 32, {"id": "a" * 32, "productNumber": products[1].sku})
    async with served(SHOP, shop, Faults()) as (adapter, _base):
        outcomes = await adapter.push_products(products)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error == f'Product with number "{products[1].sku}" already exists.'
    assert set(shop.products.records) == {"a" * 32, *(p.product_id.hex for p in products[::2])}


async def test_a_token_request_that_fails_on_the_way_is_sent_again() -> None:
    # Asking for a token creates nothing: a 503 or a timeout on it is retried like a
    # read, where the push used to fail at its first request.
    shop, products = Shop(), outgoing(3)
    faults = Faults()
    refused = faults.throttle("/api/oauth/token", status=503, headers={}, method="POST")
    async with served(SHOP, shop, faults) as (adapter, _base):
        outcomes = await adapter.push_products(products)
    assert refused.fired == 1 and all(o.ok for o in outcomes)
