"""Saleor adapter against a fake of its GraphQL API on loopback."""

import json
from dataclasses import replace

import pytest
from graphql import FieldNode, OperationDefinitionNode, VariableNode, parse
from starlette.requests import Request
from starlette.responses import JSONResponse

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from connectors.http import PlatformError
from connectors.saleor import editorjs
from tests.connectors.helpers import Fake, bearer, check_error_mapping, connected, products

# The input fields Saleor's schema defines, for those of its mutations the adapter runs
# on linked products (an unknown field is a GraphQL error there, as in Saleor).
INPUT_FIELDS = {
    "productUpdate": {"name", "description", "attributes", "category", "seo", "slug"},
    "productChannelListingUpdate": {"updateChannels", "removeChannels"},
    "productVariantUpdate": {"sku", "name", "weight", "attributes", "trackInventory"},
}
CHANNEL_LISTING = {"channelId", "isPublished", "visibleInListings", "isAvailableForPurchase"}


def argument_values(field: FieldNode, variables: dict) -> dict:
    return {a.name.value: variables[a.value.name.value] for a in field.arguments
            if isinstance(a.value, VariableNode)}  # fmt: skip


def saleor_fake() -> Fake:
    """Saleor's GraphQL API over a catalog it keeps: products (name, description,
    listing) and variants (sku, weight, EAN, stock, price), created by productBulkCreate
    and changed only by the mutations that own each field."""
    fake = Fake(authorized=bearer("app-token"))
    catalog: dict[str, dict] = {f"UHJvZHVjdDo{i}": {"name": f"Remote {i}"} for i in range(3)}
    variants: dict[str, dict] = {f"UHJvZHVjdFZhcmlhbnQ6{i}": {"sku": f"R-{i}"} for i in range(3)}
    fake.catalog, fake.variants = catalog, variants
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

    def mutate(name: str, args: dict) -> tuple[str, list[dict]]:
        """Apply one mutation; answers the id it names and its payload errors."""
        key = args.get("id") or args.get("variantId")
        if name in INPUT_FIELDS and set(args["input"]) - INPUT_FIELDS[name]:
            raise ValueError(
                f"Field {sorted(set(args['input']) - INPUT_FIELDS[name])} is not defined"
            )
        target = catalog if name in ("productUpdate", "productChannelListingUpdate") else variants
        if key not in target:
            return key, [
                {"field": "id", "message": f"Couldn't resolve id: {key}.", "code": "NOT_FOUND"}
            ]
        if name == "productUpdate":
            if args["input"].get("name") == "":
                return key, payload_errors(True, "name")
            target[key].update(args["input"])
        elif name == "productChannelListingUpdate":
            (listing,) = args["input"]["updateChannels"]
            if set(listing) - CHANNEL_LISTING:
                raise ValueError("Field is not defined by type ProductChannelListingAddInput")
            target[key]["active"] = listing["isPublished"]
        elif name == "productVariantUpdate":
            values = dict(args["input"])
            if attributes := values.pop("attributes", None):
                values["ean"] = attributes[0]["plainText"]
            target[key].update(values)
        elif name == "productVariantStocksUpdate":
            (stock,) = args["stocks"]
            if stock["quantity"] < 0:
                return key, payload_errors(True, "quantity")
            target[key]["stock"] = stock["quantity"]
        elif name == "productVariantChannelListingUpdate":
            target[key]["price"] = args["input"][0]["price"]
        else:
            raise ValueError(f"Cannot query field '{name}' on type 'Mutation'.")
        return key, []

    def run_mutations(query: str, variables: dict) -> dict:
        (operation,) = parse(query).definitions
        assert isinstance(operation, OperationDefinitionNode)
        data = {}
        for field in operation.selection_set.selections:
            assert isinstance(field, FieldNode) and field.alias
            name = field.name.value
            key, errors = mutate(name, argument_values(field, variables))
            payload = (
                "product"
                if name.startswith("product") and "Variant" not in name
                else (
                    "variant" if name == "productVariantChannelListingUpdate" else "productVariant"
                )
            )
            data[field.alias.value] = {payload: {"id": key}, "errors": errors}
        return data

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
                    catalog[f"P-{sku}"] = {"name": row["name"]}
                    variants[f"V-{sku}"] = {"sku": sku}
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
        elif query.startswith("mutation ("):
            try:
                data = run_mutations(query, variables)
            except ValueError as exc:
                return JSONResponse({"errors": [{"message": str(exc)}]})
        else:
            return JSONResponse({"errors": [{"message": "Cannot query field"}]})
        return JSONResponse({"data": data})

    fake.route("/graphql/", "POST")(graphql)
    return fake


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig("saleor", base, {"token": "app-token"}, channel="default-channel",
                           options={"product_type_id": "UHJvZHVjdFR5cGU6MQ==", "channel_id": "Q2hhbm5lbDox",
                                    "warehouse_id": "V2FyZWhvdXNlOjE=", "ean_attribute_id": "QXR0cmlidXRlOjk="})  # fmt: skip


async def test_saleor_end_to_end() -> None:
    fake = saleor_fake()
    async with connected(fake, config) as adapter:
        assert await adapter.test() == "Saleor Shop"

        batch = products(3)
        batch.append(replace(products(4)[3], external_id="UHJvZHVjdDo1:UHJvZHVjdFZhcmlhbnQ61"))
        batch.append(
            replace(products(5)[4], name="", external_id="UHJvZHVjdDo2:UHJvZHVjdFZhcmlhbnQ62")
        )
        outcomes = await adapter.push_products(batch)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "P-SKU-000:V-SKU-000"), (False, None), (True, "P-SKU-002:V-SKU-002"),
            (True, "UHJvZHVjdDo1:UHJvZHVjdFZhcmlhbnQ61"), (False, None),
        ]  # fmt: skip
        assert outcomes[1].error == "variants.0.sku: SKU already exists"
        assert outcomes[4].error == "name: Invalid value"
        create = fake.received[1].json()["variables"]["products"][0]
        assert create["variants"][0] == {
            "sku": "SKU-000", "name": "Produit 0", "attributes": [{"id": "QXR0cmlidXRlOjk=", "plainText": "3760000000000"}],
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
            StockLevel(batch[0].product_id, "SKU-000", 6, external_id="P-SKU-000:V-SKU-000"),
            StockLevel(batch[1].product_id, "SKU-001", -1, external_id="P-SKU-001:V-SKU-001"),
            StockLevel(batch[2].product_id, "SKU-002", 1),
        ])  # fmt: skip
        assert [o.ok for o in stock] == [True, False, False]
        sent = fake.received[-1].json()
        assert (
            "productVariantStocksUpdate" in sent["query"]
            and sent["variables"]["variantId0"] == "V-SKU-000"
        )

        prices = await adapter.push_prices(
            [PriceLevel(batch[0].product_id, "SKU-000", 13.0, external_id="P-SKU-000:V-SKU-000")]
        )
        assert prices[0].ok
        assert fake.received[-1].json()["variables"] == {
            "id0": "V-SKU-000",
            "input0": [{"channelId": "Q2hhbm5lbDox", "price": 13.0}],
        }

        await check_error_mapping(fake, adapter.test, throttled={"Retry-After": "2"}, wait=2.0)


async def test_saleor_request_errors_fail_the_call() -> None:
    fake = saleor_fake()
    async with connected(fake, config) as adapter:
        with pytest.raises(PlatformError, match="Cannot query field"):
            await adapter._graphql("query { nothing }")


async def test_saleor_creates_a_chunk_of_100_in_one_bulk_mutation() -> None:
    fake = saleor_fake()
    async with connected(fake, config) as adapter:
        outcomes = await adapter.push_products(products(100))
    assert [o.ok for o in outcomes] == [n != 1 for n in range(100)]
    assert outcomes[99].external_id == "P-SKU-099:V-SKU-099"
    (request,) = fake.received
    assert len(request.json()["variables"]["products"]) == 100


async def test_saleor_sends_every_changed_field_of_a_linked_product() -> None:
    fake = saleor_fake()
    linked = replace(products(1)[0], sku="SKU-NEW", ean="3000000000017", price=21.5, stock=7,
                     weight=1.25, is_active=False,
                     external_id="UHJvZHVjdDo1:UHJvZHVjdFZhcmlhbnQ61")  # fmt: skip
    async with connected(fake, config) as adapter:
        (outcome,) = await adapter.push_products([linked])
    assert outcome.ok, outcome.error
    assert len(fake.received) == 1  # one request for the whole update
    assert fake.catalog["UHJvZHVjdDo1"] == {
        "name": "Produit 0", "description": editorjs("Description 0"), "active": False,
    }  # fmt: skip
    assert fake.variants["UHJvZHVjdFZhcmlhbnQ61"] == {
        "sku": "SKU-NEW", "weight": 1.25, "ean": "3000000000017", "stock": 7, "price": 21.5,
    }  # fmt: skip


async def test_saleor_fails_a_linked_product_when_any_of_its_mutations_fails() -> None:
    fake = saleor_fake()
    linked = replace(products(1)[0], stock=-3, external_id="UHJvZHVjdDo1:UHJvZHVjdFZhcmlhbnQ61")
    async with connected(fake, config) as adapter:
        (outcome,) = await adapter.push_products([linked])
    assert (outcome.ok, outcome.error) == (False, "quantity: Invalid value")
