"""Magento's asynchronous bulk writes, against a fake whose message queue saves products
only when its consumer runs: an accepted operation is not a saved product."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from connectors.base import ConnectorConfig, PlatformAdapter, adapter_for
from connectors.http import PlatformHttp
from pim import outbound
from tests.connectors.fakes.stores import TOKEN, MagentoFake
from tests.connectors.helpers import LOOPBACK, products
from tests.loopback import serve


@asynccontextmanager
async def magento(fake: MagentoFake, **options: str) -> AsyncIterator[PlatformAdapter]:
    async with serve(fake.app()) as url, outbound.client() as client:
        config = ConnectorConfig(
            "magento", url, {"access_token": TOKEN}, options=dict(options),
            async_wait_seconds=0.05, poll_interval_seconds=0.01,
        )  # fmt: skip
        yield adapter_for(config, PlatformHttp(client, LOOPBACK))


async def test_magento_records_each_bulk_operations_real_outcome() -> None:
    fake = MagentoFake(refuse={"SKU-001": "URL key for specified store already exists."})
    async with magento(fake) as adapter:
        outcomes = await adapter.push_products(products(3))
    assert [(o.ok, o.external_id, o.transient) for o in outcomes] == [
        (True, "SKU-000", False), (False, None, False), (True, "SKU-002", False),
    ]  # fmt: skip
    assert outcomes[1].error == "URL key for specified store already exists."
    assert sorted(fake.by_sku()) == ["SKU-000", "SKU-002"]
    (bulk_uuid,) = fake.bulks
    assert ("GET", f"/rest/V1/bulk/{bulk_uuid}/status") in fake.requests


async def test_magento_reports_an_operation_worth_retrying_as_transient() -> None:
    fake = MagentoFake(retriable={"SKU-000": "Deadlock found when trying to get lock"})
    async with magento(fake) as adapter:
        outcomes = await adapter.push_products(products(2))
    assert [(o.ok, o.transient, o.error) for o in outcomes] == [
        (False, True, "Deadlock found when trying to get lock"), (True, False, None),
    ]  # fmt: skip


async def test_magento_waits_for_its_queue_before_calling_a_product_saved() -> None:
    fake = MagentoFake(open_polls=2)
    async with magento(fake) as adapter:
        outcomes = await adapter.push_products(products(2))
    assert [o.ok for o in outcomes] == [True, True]
    assert fake.status_polls == 3


async def test_magento_reports_operations_still_queued_as_pending_not_done() -> None:
    fake = MagentoFake(open_polls=1000)  # consumers not running
    async with magento(fake) as adapter:
        outcomes = await adapter.push_products(products(2))
    assert [(o.ok, o.transient) for o in outcomes] == [(False, True), (False, True)]
    assert fake.products == {}


async def test_magento_puts_the_store_code_before_async_bulk() -> None:
    fake = MagentoFake()
    async with magento(fake, store_code="fr") as adapter:
        outcomes = await adapter.push_products(products(1))
    assert outcomes[0].ok
    (bulk_uuid,) = fake.bulks
    assert fake.requests[:2] == [
        ("POST", "/rest/fr/async/bulk/V1/products"),
        ("GET", f"/rest/fr/V1/bulk/{bulk_uuid}/status"),
    ]
