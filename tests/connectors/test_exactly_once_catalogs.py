"""Squarespace, Saleor and Medusa keep each product once whatever they answer: 250
products pushed chunk by chunk as the sync job does (connectors' retries, then
reconciliation of what was created before anything is sent again), through a write
committed then answered 502, a connection dropped or hung after the commit, and
throttling mid-push."""

import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest
from starlette.applications import Starlette

from connectors.base import ConnectorConfig, OutgoingProduct, adapter_for
from connectors.external_ids import handle_for
from connectors.http import PlatformHttp, RetryPolicy
from jobs.sync import push_products_once
from pim import outbound
from pim.settings import Settings
from tests.connectors.fakes.catalogs import Catalog, medusa, saleor, squarespace
from tests.connectors.fakes.faults import Faults
from tests.connectors.recording import LOOPBACK
from tests.loopback import serve

SALEOR_OPTIONS = {"product_type_id": "PT", "channel_id": "CH", "warehouse_id": "WH"}
PLATFORMS: dict[str, tuple[Callable[[Catalog], Starlette], str, dict[str, str], dict[str, str]]] = {
    "squarespace": (squarespace, "/1.0/commerce/products", {"api_key": "k"},
                    {"store_page_id": "page-1"}),
    "saleor": (saleor, "/graphql/", {"token": "t"}, SALEOR_OPTIONS),
    "medusa": (medusa, "/admin/products/batch", {"api_key": "k"}, {}),
}  # fmt: skip
FAULTS: dict[str, Callable[[Faults, str], object]] = {
    "502 after commit": lambda faults, path: faults.fail_after_commit(path, at=2),
    "connection dropped after commit": lambda faults, path: faults.drop_after_commit(path, at=2),
    "timeout after commit": lambda faults, path: faults.hang_after_commit(path, at=2),
    "throttled mid-push": lambda faults, path: faults.throttle(path, method="POST", at=2, times=2),
}
SETTINGS = Settings(connector_retry_base_delay=0.0, connector_retry_max_delay=0.0)


def outgoing(count: int) -> list[OutgoingProduct]:
    return [
        OutgoingProduct(uuid.uuid4(), f"SKU-{i:04}", None, f"Produit {i}", price=10.0 + i, stock=i)
        for i in range(count)
    ]


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_250_products_exist_once_whatever_the_platform_answers(
    platform: str, fault: str
) -> None:
    app, path, credentials, options = PLATFORMS[platform]
    catalog, faults = Catalog(), Faults(hang_seconds=1.5)
    FAULTS[fault](faults, path)
    products = outgoing(250)
    links: dict[uuid.UUID, str] = {}

    async def remember(ids: dict[uuid.UUID, str]) -> None:
        links.update(ids)

    async with serve(faults.wrap(app(catalog))) as base, outbound.client(timeout=1.0) as client:
        http = PlatformHttp(client, LOOPBACK, retry=RetryPolicy.from_settings(SETTINGS))
        adapter = adapter_for(ConnectorConfig(platform, base, credentials, options=options), http)
        for start in range(0, len(products), adapter.chunk_size):
            chunk = [replace(p, external_id=links.get(p.product_id))
                     for p in products[start : start + adapter.chunk_size]]  # fmt: skip
            outcomes = await push_products_once(SETTINGS, adapter, chunk, remember)
            assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
            links.update({o.product_id: o.external_id for o in outcomes if o.external_id})

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

    async def remember(_ids: dict[uuid.UUID, str]) -> None:
        return None

    async with serve(app(catalog)) as base, outbound.client() as client:
        adapter = adapter_for(
            ConnectorConfig(platform, base, credentials, options=options),
            PlatformHttp(client, LOOPBACK),
        )
        outcomes = await push_products_once(SETTINGS, adapter, products, remember, uncertain=True)
    assert all(o.ok for o in outcomes)
    assert len(catalog.records) == 20 and len(catalog.creates) == 20
    records = {f"{r.id}:{r.variant}" for r in catalog.records.values()}
    assert {o.external_id for o in outcomes} == records
