"""Saleor adapter against a fake of its GraphQL API on loopback."""

import json
from dataclasses import replace

import pytest
from graphql import parse
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from connectors.http import PlatformError
from tests.fakes_platforms2 import Fake, bearer, check_error_mapping, connected, products


def saleor_fake() -> tuple[Fake, list[Route]]:
    fake = Fake(authorized=bearer("app-token"))
    remote = [
        {"id": f"UHJvZHVjdDo{i}", "name": f"Remote {i}",
         "description": json.dumps({"blocks": [{"type": "paragraph", "data": {"text": f"D{i}"}}]}),
         "variants": [{"id": f"UHJvZHVjdFZhcmlhbnQ6{i}", "sku": f"R-{i}", "weight": {"value": 1.5, "unit": "KG"},
                       "stocks": [{"quantity": i}],
                       "channelListings": [{"channel": {"slug": "default-channel"},
                                            "price": {"amount": 8.0, "currency": "EUR"}}]}]}
        for i in range(3)
    ]  # fmt: skip

    def payload_errors(bad: bool, field: str) -> list[dict]:
        return [{"field": field, "message": "Invalid value", "code": "INVALID"}] if bad else []

    async def graphql(request: Request) -> JSONResponse:
        body = await request.json()
        query, variables = body["query"], body["variables"]
        parse(query)  # a syntax error fails the test here
        data: dict = {}
        if "shop" in query:
            data = {"shop": {"name": "Saleor Shop"}}
        elif "productBulkCreate" in query:
            results = []
            for row in variables["products"]:
                if row["name"] == "Produit 1":
                    results.append(
                        {
                            "product": None,
                            "errors": [
                                {
                                    "path": "variants.0.sku",
                                    "message": "SKU already exists",
                                    "code": "UNIQUE",
                                }
                            ],
                        }
                    )
                else:
                    sku = row["variants"][0]["sku"]
                    results.append(
                        {
                            "product": {
                                "id": f"P-{sku}",
                                "variants": [{"id": f"V-{sku}", "sku": sku}],
                            },
                            "errors": [],
                        }
                    )
            data = {"productBulkCreate": {"results": results, "errors": []}}
        elif "products(" in query:
            start = int(variables["after"] or 0)
            page = remote[start : start + 2]
            data = {
                "products": {
                    "pageInfo": {
                        "hasNextPage": start + 2 < len(remote),
                        "endCursor": str(start + 2),
                    },
                    "edges": [{"node": node} for node in page],
                }
            }
        elif "productUpdate" in query:
            for n in range(len(variables) // 2):
                bad = variables[f"input{n}"]["name"] == ""
                data[f"m{n}"] = {
                    "product": {"id": variables[f"id{n}"]},
                    "errors": payload_errors(bad, "name"),
                }
        elif "productVariantStocksUpdate" in query:
            for n in range(len(variables) // 2):
                bad = variables[f"stocks{n}"][0]["quantity"] < 0
                data[f"m{n}"] = {
                    "productVariant": {"id": variables[f"variantId{n}"]},
                    "errors": payload_errors(bad, "quantity"),
                }
        elif "productVariantChannelListingUpdate" in query:
            for n in range(len(variables) // 2):
                data[f"m{n}"] = {"variant": {"id": variables[f"id{n}"]}, "errors": []}
        else:
            return JSONResponse({"errors": [{"message": "Cannot query field"}]})
        return JSONResponse({"data": data})

    return fake, [Route("/graphql/", graphql, methods=["POST"])]


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig("saleor", base, {"token": "app-token"}, channel="default-channel",
                           options={"product_type_id": "UHJvZHVjdFR5cGU6MQ==", "channel_id": "Q2hhbm5lbDox",
                                    "warehouse_id": "V2FyZWhvdXNlOjE=", "ean_attribute_id": "QXR0cmlidXRlOjk="})  # fmt: skip


async def test_saleor_end_to_end() -> None:
    fake, routes = saleor_fake()
    async with connected(fake, routes, config) as adapter:
        assert await adapter.test() == "Saleor Shop"

        batch = products(3)
        batch.append(replace(products(4)[3], external_id="UHJvZHVjdDo5:UHJvZHVjdFZhcmlhbnQ6OQ=="))
        batch.append(replace(products(5)[4], name="", external_id="UHJvZHVjdDo4:VmFyOjg="))
        outcomes = await adapter.push_products(batch)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "P-SKU-0:V-SKU-0"), (False, None), (True, "P-SKU-2:V-SKU-2"),
            (True, "UHJvZHVjdDo5:UHJvZHVjdFZhcmlhbnQ6OQ=="), (False, None),
        ]  # fmt: skip
        assert outcomes[1].error == "variants.0.sku: SKU already exists"
        assert outcomes[4].error == "name: Invalid value"
        create = fake.received[1].json()["variables"]["products"][0]
        assert create["variants"][0] == {
            "sku": "SKU-0", "name": "Produit 0", "attributes": [{"id": "QXR0cmlidXRlOjk=", "plainText": "3000000000000"}],
            "trackInventory": True, "stocks": [{"warehouse": "V2FyZWhvdXNlOjE=", "quantity": 0}],
            "channelListings": [{"channelId": "Q2hhbm5lbDox", "price": 10.0}], "weight": 0.5,
        }  # fmt: skip
        assert create["productType"] == "UHJvZHVjdFR5cGU6MQ=="
        assert json.loads(create["description"])["blocks"][0]["data"]["text"] == "Description 0"

        pages = [page async for page in adapter.pull_products()]
        assert [len(page) for page in pages] == [2, 1]
        remote = pages[1][0]
        assert (remote.sku, remote.description, remote.price, remote.stock, remote.weight) == (
            "R-2",
            "D2",
            8.0,
            2,
            1.5,
        )

        stock = await adapter.push_stock([
            StockLevel(batch[0].product_id, "SKU-0", 6, external_id="P-SKU-0:V-SKU-0"),
            StockLevel(batch[1].product_id, "SKU-1", -1, external_id="P-SKU-1:V-SKU-1"),
            StockLevel(batch[2].product_id, "SKU-2", 1),
        ])  # fmt: skip
        assert [o.ok for o in stock] == [True, False, False]
        sent = fake.received[-1].json()
        assert (
            "productVariantStocksUpdate" in sent["query"]
            and sent["variables"]["variantId0"] == "V-SKU-0"
        )

        prices = await adapter.push_prices(
            [PriceLevel(batch[0].product_id, "SKU-0", 13.0, external_id="P-SKU-0:V-SKU-0")]
        )
        assert prices[0].ok
        assert fake.received[-1].json()["variables"] == {
            "id0": "V-SKU-0",
            "input0": [{"channelId": "Q2hhbm5lbDox", "price": 13.0}],
        }

        throttled = JSONResponse({"errors": []}, 429, headers={"Retry-After": "2"})
        await check_error_mapping(fake, adapter.test, throttled, expected_wait=2.0)


async def test_saleor_request_errors_fail_the_call() -> None:
    fake, routes = saleor_fake()
    async with connected(fake, routes, config) as adapter:
        with pytest.raises(PlatformError, match="Cannot query field"):
            await adapter._graphql("query { nothing }")


async def test_saleor_creates_a_chunk_of_100_in_one_bulk_mutation() -> None:
    fake, routes = saleor_fake()
    async with connected(fake, routes, config) as adapter:
        outcomes = await adapter.push_products(products(100))
    assert [o.ok for o in outcomes] == [n != 1 for n in range(100)]
    assert outcomes[99].external_id == "P-SKU-99:V-SKU-99"
    (request,) = fake.received
    assert len(request.json()["variables"]["products"]) == 100
