"""Squarespace, Saleor and Medusa keep each product once whatever they answer: 250
products pushed chunk by chunk as the sync job does (connectors' retries, then
reconciliation of what was created before anything is sent again), through a write
committed then answered 502, a connection dropped or hung after the commit, and
throttling mid-push."""

from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from connectors.base import ConnectorConfig, adapter_for
from connectors.external_ids import handle_for
from connectors.http import PlatformHttp, RetryPolicy
from pim import outbound
from tests.connectors.exactly_once import FAULTS, HANG_SECONDS, SETTINGS, outgoing, push_all
from tests.connectors.fakes.catalogs import Catalog, medusa, saleor, squarespace
from tests.connectors.fakes.faults import Faults
from tests.connectors.helpers import LOOPBACK
from tests.loopback import serve

SALEOR_OPTIONS = {"product_type_id": "PT", "channel_id": "CH", "warehouse_id": "WH"}
PLATFORMS: dict[str, tuple[Callable[[Catalog], Starlette], str, dict[str, str], dict[str, str]]] = {
    "squarespace": (squarespace, "/1.0/commerce/products", {"api_key": "k"},
                    {"store_page_id": "page-1"}),
    "saleor": (saleor, "/graphql/", {"token": "t"}, SALEOR_OPTIONS),
    "medusa": (medusa, "/admin/products/batch", {"api_key": "k"}, {}),
}  # fmt: skip


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_250_products_exist_once_whatever_the_platform_answers(
    platform: str, fault: str
) -> None:
    app, path, credentials, options = PLATFORMS[platform]
    catalog, faults = Catalog(), Faults(hang_seconds=HANG_SECONDS)
    FAULTS[fault](faults, path)
    products = outgoing()

    async with serve(faults.wrap(app(catalog))) as base, outbound.client(timeout=1.0) as client:
        http = PlatformHttp(client, LOOPBACK, retry=RetryPolicy.from_settings(SETTINGS))
        adapter = adapter_for(ConnectorConfig(platform, base, credentials, options=options), http)
        links = await push_all(adapter, products)

    assert faults.rules[0].fired >= 1
    assert len(catalog.records) == 250
    assert sorted(catalog.creates) == sorted({p.sku for p in products})  # each created once
    records = {f"{r.id}:{r.variant}" for r in catalog.records.values()}
    assert set(links) == {p.product_id for p in products} and set(links.values()) == records


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_a_resumed_push_looks_before_creating_what_a_crashed_run_may_have_sent(
    platform: str,
) -> None:
    app, _path, credentials, options = PLATFORMS[platform]
    catalog = Catalog()
    products = outgoing(20)
    for product in products[:10]:  # created by a run that crashed before recording them
        catalog.create(product.sku, handle_for(product.sku))

    async with serve(app(catalog)) as base, outbound.client() as client:
        adapter = adapter_for(
            ConnectorConfig(platform, base, credentials, options=options),
            PlatformHttp(client, LOOPBACK),
        )
        links = await push_all(adapter, products, uncertain=True)
    assert len(catalog.records) == 20 and len(catalog.creates) == 20
    records = {f"{r.id}:{r.variant}" for r in catalog.records.values()}
    assert set(links.values()) == records
