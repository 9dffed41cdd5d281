"""Amazon adapter against a fake SP-API (LWA token endpoint, Sellers, Listings Items
2021-08-01), and against the strict one of tests.connectors.fakes.amazon: each
listing once through the exactly-once matrix, expired tokens (Amazon's 403 as well as
a 401) and redirects."""

import urllib.parse
from dataclasses import replace

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from connectors.http import PlatformError
from tests.connectors.exactly_once import outgoing, push_all
from tests.connectors.fakes.amazon import LISTINGS, SellerCentral
from tests.connectors.fakes.faults import Faults
from tests.connectors.helpers import Fake, check_error_mapping, connected, products
from tests.connectors.upsert_matrix import (
    CHECKS,
    UpsertPlatform,
    assert_each_once,
    served,
)

RATE = {"x-amzn-RateLimit-Limit": "2.0"}


def amazon_fake() -> Fake:
    fake = Fake(
        authorized=lambda r, _body: r.headers.get("x-amz-access-token") == "Atza|token",
    )
    listings = [
        {"sku": f"R-{i}",
         "summaries": [{"marketplaceId": "A13V1IB3VIYZZH", "asin": f"B0{i}", "itemName": f"Remote {i}",
                        "status": ["BUYABLE"]}],
         "attributes": {"externally_assigned_product_identifier": [{"type": "ean", "value": f"800000000000{i}"}],
                        "brand": [{"value": "Acme"}]},
         "offers": [{"marketplaceId": "A13V1IB3VIYZZH", "offerType": "B2C",
                     "price": {"currencyCode": "EUR", "amount": "15.00"}}],
         "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": i}]}
        for i in range(3)
    ]  # fmt: skip

    async def token(request: Request) -> JSONResponse:
        form = urllib.parse.parse_qs((await request.body()).decode())
        if form != {"grant_type": ["refresh_token"], "refresh_token": ["Atzr|refresh"],
                    "client_id": ["amzn1.application-oa2-client.x"], "client_secret": ["secret"]}:  # fmt: skip
            return JSONResponse({"error": "invalid_grant"}, 400)
        return JSONResponse(
            {"access_token": "Atza|token", "token_type": "bearer", "expires_in": 3600}
        )

    async def participations(_: Request) -> JSONResponse:
        return JSONResponse({"payload": [{
            "marketplace": {"id": "A13V1IB3VIYZZH", "name": "Amazon.fr", "countryCode": "FR"},
            "participation": {"isParticipating": True, "hasSuspendedListings": False}}]}, headers=RATE)  # fmt: skip

    async def item(request: Request) -> JSONResponse:
        assert request.query_params["marketplaceIds"] == "A13V1IB3VIYZZH"
        body = await request.json()
        sku = request.path_params["sku"]
        if body["productType"] != "PRODUCT":
            return JSONResponse(
                {"errors": [{"code": "InvalidInput", "message": "productType"}]}, 400
            )
        invalid = sku == "SKU-001"
        answer = {"sku": sku, "status": "INVALID" if invalid else "ACCEPTED", "submissionId": "sub-1",
                  "issues": [{"code": "90220", "message": "'brand' is required", "severity": "ERROR"}]
                  if invalid else []}  # fmt: skip
        return JSONResponse(answer, headers=RATE)

    async def search(request: Request) -> JSONResponse:
        assert "fulfillmentAvailability" in request.query_params["includedData"]
        start = int(request.query_params.get("pageToken", "0"))
        body: dict = {"numberOfResults": len(listings), "items": listings[start : start + 2]}
        if start + 2 < len(listings):
            body["pagination"] = {"nextToken": str(start + 2)}
        return JSONResponse(body, headers=RATE)

    fake.route("/auth/o2/token", "POST", open=True)(token)
    fake.route("/sellers/v1/marketplaceParticipations")(participations)
    fake.route("/listings/2021-08-01/items/{seller}/{sku}", "PUT", "PATCH")(item)
    fake.route("/listings/2021-08-01/items/{seller}")(search)
    return fake


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig(
        "amazon", base,
        {"client_id": "amzn1.application-oa2-client.x", "client_secret": "secret",
         "refresh_token": "Atzr|refresh"},
        options={"seller_id": "A2SELLER", "marketplace_id": "A13V1IB3VIYZZH",
                 "token_url": f"{base}/auth/o2/token"},
    )  # fmt: skip


async def test_amazon_end_to_end() -> None:
    fake = amazon_fake()
    async with connected(fake, config) as adapter:
        assert await adapter.test() == "Amazon Amazon.fr"

        batch = products(3)
        outcomes = await adapter.push_products(batch)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "SKU-000"),
            (False, None),
            (True, "SKU-002"),
        ]
        assert outcomes[1].error == "90220: 'brand' is required"
        put = fake.to("/listings/2021-08-01/items/A2SELLER/SKU-000", "PUT")[0]
        assert dict(put.query) == {"marketplaceIds": "A13V1IB3VIYZZH", "issueLocale": "fr_FR"}
        mp = {"marketplace_id": "A13V1IB3VIYZZH"}
        assert put.json() == {
            "productType": "PRODUCT", "requirements": "LISTING",
            "attributes": {
                "item_name": [{"value": "Produit 0", "language_tag": "fr_FR", **mp}],
                "condition_type": [{"value": "new_new", **mp}],
                "product_description": [{"value": "Description 0", "language_tag": "fr_FR", **mp}],
                "brand": [{"value": "Pixee", "language_tag": "fr_FR", **mp}],
                "externally_assigned_product_identifier": [{"type": "ean", "value": "3760000000000", **mp}],
                "item_weight": [{"unit": "kilograms", "value": 0.5, **mp}],
                "purchasable_offer": [{"currency": "EUR", "our_price": [{"schedule": [{"value_with_tax": 10.0}]}], **mp}],
                "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 0}],
            },
        }  # fmt: skip

        pages = [page async for page in adapter.pull_products()]
        assert [[p.sku for p in page] for page in pages] == [["R-0", "R-1"], ["R-2"]]
        assert (pages[1][0].ean, pages[1][0].price, pages[1][0].stock, pages[1][0].brand) == (
            "8000000000002",
            15.0,
            2,
            "Acme",
        )

        stock = await adapter.push_stock([StockLevel(batch[0].product_id, "SKU-000", 8)])
        assert stock[0].ok
        patch = fake.to("/listings/2021-08-01/items/A2SELLER/SKU-000", "PATCH")[-1].json()
        assert patch == {"productType": "PRODUCT", "patches": [{
            "op": "replace", "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 8}]}]}  # fmt: skip
        prices = await adapter.push_prices([PriceLevel(batch[2].product_id, "SKU-002", 21.0)])
        assert prices[0].ok
        patch = fake.to("/listings/2021-08-01/items/A2SELLER/SKU-002", "PATCH")[-1].json()
        assert patch["patches"][0]["path"] == "/attributes/purchasable_offer"
        assert patch["patches"][0]["value"][0]["our_price"] == [
            {"schedule": [{"value_with_tax": 21.0}]}
        ]
        assert len(fake.to("/auth/o2/token", "POST")) == 1

        # No Retry-After: one token of the rate Amazon last announced (2/s).
        await check_error_mapping(fake, adapter.test, throttled=RATE, wait=0.5)
        # A throttled SKU makes the chunk transient, to be retried as a whole.
        fake.fail(429, {"Retry-After": "1"}, {"errors": [{"code": "QuotaExceeded"}]})
        with pytest.raises(PlatformError) as caught:
            await adapter.push_stock([StockLevel(batch[0].product_id, "SKU-000", 8)])
        assert (caught.value.transient, caught.value.retry_after) == (True, 1.0)


async def test_amazon_puts_a_chunk_of_100_skus_a_few_at_a_time() -> None:
    fake = amazon_fake()
    async with connected(fake, config) as adapter:
        outcomes = await adapter.push_products(products(100))
    assert [o.ok for o in outcomes] == [n != 1 for n in range(100)]
    assert len([r for r in fake.received if r.method == "PUT"]) == 100
    assert fake.most_in_flight <= 5


# Listings are upserts by seller SKU: a lost answer costs one PUT again, never a listing.
SELLER_CENTRAL = UpsertPlatform(
    fake=SellerCentral, upserts=lambda fake: fake.listings, config=config,
    write=LISTINGS, method="PUT", rows_per_write=1, token_header="x-amz-access-token",
    login="/auth/o2/token", expire_after=100, key=lambda product: product.sku,
    update=LISTINGS, update_method="PATCH",
)  # fmt: skip


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_amazon_keeps_each_listing_once(check: str) -> None:
    await CHECKS[check](SELLER_CENTRAL)


async def test_an_access_token_amazon_says_expired_with_a_403_is_renewed() -> None:
    """The SP-API refuses an expired access token with a 403 Unauthorized, not a 401."""
    fake, products = SellerCentral(token_calls=100), outgoing()
    async with served(SELLER_CENTRAL, fake, Faults()) as (adapter, _base):
        links = await push_all(adapter, products)
    assert fake.token_requests == 3  # 250 calls, 100 a token, renewed once each time
    assert_each_once(SELLER_CENTRAL, fake, products, links, lost_answers=0)


async def test_a_listing_amazon_finds_incomplete_fails_alone() -> None:
    """Amazon answers such a PUT 200 with status INVALID and its issues: not stored."""
    seller_central, products = SellerCentral(), outgoing(3)
    products[1] = replace(products[1], brand=None)
    async with served(SELLER_CENTRAL, seller_central, Faults()) as (adapter, _base):
        outcomes = await adapter.push_products(products)
    assert [(o.ok, o.error) for o in outcomes] == [
        (True, None), (False, "90220: 'brand' is required but not supplied."), (True, None),
    ]  # fmt: skip
    assert set(seller_central.listings.records) == {p.sku for p in products[::2]}
