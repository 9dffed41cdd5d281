"""Squarespace adapter against a fake of the Commerce APIs v1.0 on loopback."""

from dataclasses import replace

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from connectors.http import PlatformError
from tests.connectors.helpers import Fake, bearer, check_error_mapping, connected, products


def squarespace_fake() -> Fake:
    fake = Fake(authorized=bearer("sq-key"))
    catalog: dict[str, dict] = {
        f"p{i}": {"id": f"p{i}", "type": "PHYSICAL", "name": f"Remote {i}", "isVisible": True,
                  "variants": [{"id": f"v{i}", "sku": f"R-{i}", "stock": {"quantity": i},
                                "pricing": {"basePrice": {"currency": "EUR", "value": "9.50"}}}]}
        for i in range(3)
    }  # fmt: skip

    async def website(_: Request) -> JSONResponse:
        return JSONResponse({"id": "site1", "siteTitle": "Boutique Pixee", "url": "https://x"})

    async def list_products(request: Request) -> JSONResponse:
        # Two products a page, the cursor being the index to start from.
        start = int(request.query_params.get("cursor", "0"))
        page = list(catalog.values())[start : start + 2]
        more = start + 2 < len(catalog)
        pagination = {"hasNextPage": more, "nextPageCursor": str(start + 2) if more else None}
        return JSONResponse({"products": page, "pagination": pagination})

    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        if body["name"] == "Produit 1":
            return JSONResponse({"type": "INVALID_REQUEST_ERROR", "message": "name taken"}, 400)
        assert body["storePageId"] == "page-1" and request.headers["user-agent"]
        product = {**body, "id": f"new-{body['variants'][0]['sku']}"}
        product["variants"] = [{**body["variants"][0], "id": "var-1"}]
        return JSONResponse(product, status_code=201)

    async def update(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["pid"], **(await request.json())})

    async def adjust(request: Request) -> Response:
        assert len(request.headers["idempotency-key"]) <= 64
        return Response(status_code=204)

    fake.route("/1.0/authorization/website")(website)
    fake.route("/1.0/commerce/products", "GET")(list_products)
    fake.route("/1.0/commerce/products", "POST")(create)
    fake.route("/1.0/commerce/products/{pid}", "POST")(update)
    fake.route("/1.0/commerce/products/{pid}/variants/{vid}", "POST")(update)
    fake.route("/1.0/commerce/inventory/adjustments", "POST")(adjust)
    return fake


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig(
        "squarespace", base, {"api_key": "sq-key"}, options={"store_page_id": "page-1"}
    )


async def test_squarespace_end_to_end() -> None:
    fake = squarespace_fake()
    async with connected(fake, config) as adapter:
        assert await adapter.test() == "Boutique Pixee"

        new = products(3)
        linked = replace(new[0], external_id="p0:v0")
        outcomes = await adapter.push_products([*new, linked])
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "new-SKU-000:var-1"), (False, None), (True, "new-SKU-002:var-1"), (True, "p0:v0"),
        ]  # fmt: skip
        assert "name taken" in (outcomes[1].error or "")
        sent = [r.json()["variants"][0] for r in fake.to("/1.0/commerce/products", "POST")]
        assert next(v for v in sent if v["sku"] == "SKU-000") == {
            "sku": "SKU-000", "pricing": {"basePrice": {"currency": "EUR", "value": "10.00"}},
            "shippingMeasurements": {"weight": {"unit": "KILOGRAM", "value": 0.5}},
            "stock": {"quantity": 0, "unlimited": False},
        }  # fmt: skip
        assert fake.to("/1.0/commerce/products/p0/variants/v0", "POST")

        pages = [page async for page in adapter.pull_products()]
        assert [[p.external_id for p in page] for page in pages] == [["p0:v0", "p1:v1"], ["p2:v2"]]
        assert (pages[0][1].sku, pages[0][1].price, pages[0][1].stock) == ("R-1", 9.5, 1)

        stock = await adapter.push_stock([
            StockLevel(new[0].product_id, "SKU-000", 7, external_id="p0:v0"),
            StockLevel(new[1].product_id, "SKU-001", 3),
        ])  # fmt: skip
        assert [o.ok for o in stock] == [True, False]
        adjustment = fake.to("/1.0/commerce/inventory/adjustments", "POST")[0].json()
        assert adjustment == {"setFiniteOperations": [{"variantId": "v0", "quantity": 7}]}

        prices = await adapter.push_prices([PriceLevel(new[0].product_id, "SKU-000", 12.5,
                                                       external_id="p1:v1")])  # fmt: skip
        assert prices[0].ok
        assert fake.to("/1.0/commerce/products/p1/variants/v1", "POST")[-1].json() == {
            "pricing": {"basePrice": {"currency": "EUR", "value": "12.50"}}
        }

        await check_error_mapping(fake, adapter.test, throttled={}, wait=60.0)
        fake.fail(429, {"Retry-After": "12"}, {})
        with pytest.raises(PlatformError) as caught:
            await adapter.push_products(new[:1])
        assert caught.value.retry_after == 12.0  # the header wins over the default minute


async def test_squarespace_creates_a_chunk_of_100_a_few_at_a_time() -> None:
    fake = squarespace_fake()
    async with connected(fake, config) as adapter:
        outcomes = await adapter.push_products(products(100))
    assert [o.ok for o in outcomes] == [n != 1 for n in range(100)]
    assert len(fake.to("/1.0/commerce/products", "POST")) == 100
    assert fake.most_in_flight <= 4
