"""Medusa adapter against a fake of the Medusa v2 Admin API on loopback."""

from dataclasses import replace

from connectors.base import ConnectorConfig, PriceLevel, StockLevel
from tests.connectors.fakes.medusa import medusa_fake
from tests.connectors.helpers import check_error_mapping, connected, products


def config(base: str) -> ConnectorConfig:
    return ConnectorConfig("medusa", base, {"api_key": "sk_test_123"},
                           options={"location_id": "sloc_1", "sales_channel_id": "sc_1"})  # fmt: skip


async def test_medusa_end_to_end() -> None:
    fake = medusa_fake()
    async with connected(fake, config) as adapter:
        assert await adapter.test() == "Medusa Store"

        good = [products(1)[0], products(3, linked=range(3))[2]]
        good[1] = replace(good[1], external_id="prod_2:variant_2")
        outcomes = await adapter.push_products(good)
        assert [(o.ok, o.external_id) for o in outcomes] == [
            (True, "prod_new_SKU-000:variant_SKU-000"), (True, "prod_2:variant_2"),
        ]  # fmt: skip
        sent = fake.to("/admin/products/batch", "POST")[0].json()
        assert sent["create"][0] == {
            "title": "Produit 0", "subtitle": "Court 0", "description": "Description 0", "status": "published",
            "weight": 0.5, "metadata": {"brand": "Pixee"}, "handle": "sku-000",
            "options": [{"title": "Default", "values": ["Default"]}],
            "variants": [{"title": "Produit 0", "sku": "SKU-000", "ean": "3760000000000",
                          "weight": 0.5, "prices": [{"currency_code": "eur", "amount": 10.0}],
                          "manage_inventory": True, "options": {"Default": "Default"}}],
            "sales_channels": [{"id": "sc_1"}],
        }  # fmt: skip
        assert sent["update"][0]["id"] == "prod_2"
        assert sent["update"][0]["variants"][0]["id"] == "variant_2"

        # A refused batch is sent again product by product, so only the culprit fails.
        outcomes = await adapter.push_products(products(3))
        assert [o.ok for o in outcomes] == [True, False, True]
        assert outcomes[1].error and "handle exists" in outcomes[1].error
        assert len(fake.to("/admin/products", "POST")) == 3

        pages = [page async for page in adapter.pull_products()]
        assert [[p.external_id for p in page] for page in pages] == [
            ["prod_0:variant_0", "prod_1:variant_1"],
            ["prod_2:variant_2"],
        ]
        assert (pages[0][1].ean, pages[0][1].price, pages[0][1].stock) == ("6000000000001", 7.5, 1)

        batch = products(3)
        stock = await adapter.push_stock([StockLevel(p.product_id, p.sku, 5) for p in batch])
        assert [o.ok for o in stock] == [True, True, False]
        levels = fake.to("/admin/inventory-items/location-levels/batch", "POST")[0].json()
        assert levels == {
            "create": [
                {
                    "inventory_item_id": "iitem_SKU-001",
                    "location_id": "sloc_1",
                    "stocked_quantity": 5,
                }
            ],
            "update": [
                {
                    "inventory_item_id": "iitem_SKU-000",
                    "location_id": "sloc_1",
                    "stocked_quantity": 5,
                }
            ],
            "delete": [],
        }

        prices = await adapter.push_prices([
            PriceLevel(batch[0].product_id, "SKU-000", 11.0, external_id="prod_0:variant_0"),
            PriceLevel(batch[1].product_id, "SKU-001", 12.0),
        ])  # fmt: skip
        assert [o.ok for o in prices] == [True, False]
        assert fake.to("/admin/products/prod_0/variants/batch", "POST")[0].json() == {
            "update": [{"id": "variant_0", "prices": [{"currency_code": "eur", "amount": 11.0}]}]
        }

        await check_error_mapping(fake, adapter.test, throttled={"Retry-After": "5"}, wait=5.0)


async def test_medusa_admin_login_gives_a_jwt() -> None:
    fake = medusa_fake()

    def login(base: str) -> ConnectorConfig:
        credentials = {"email": "admin@pixee.fr", "password": "secret"}
        return ConnectorConfig("medusa", base, credentials, options={"location_id": "sloc_1"})

    async with connected(fake, login) as adapter:
        assert await adapter.test() == "Medusa Store"
        assert await adapter.test() == "Medusa Store"
    assert len(fake.to("/auth/user/emailpass", "POST")) == 1


async def test_medusa_sends_a_chunk_of_100_in_one_batch() -> None:
    fake = medusa_fake()
    chunk = [p for n, p in enumerate(products(101)) if n != 1]  # no refused product
    async with connected(fake, config) as adapter:
        outcomes = await adapter.push_products(chunk)
    assert all(o.ok for o in outcomes) and len(outcomes) == 100
    (batch,) = fake.to("/admin/products/batch", "POST")
    assert len(batch.json()["create"]) == 100 and not fake.to("/admin/products", "POST")
