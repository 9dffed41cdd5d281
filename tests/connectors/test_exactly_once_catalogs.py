"""Squarespace, Saleor and Medusa keep each product once whatever they answer: 250
products pushed chunk by chunk as the sync job does (connectors' retries, then
reconciliation of what was created before anything is sent again), through a write
committed then answered 502, a connection dropped or hung after the commit,
throttling mid-push, a session token that expires, and a write redirected within its
host or to another one."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette

from connectors.base import ConnectorConfig, OutgoingProduct, PlatformAdapter
from connectors.external_ids import handle_for
from tests.connectors.exactly_once import (
    FAULTS,
    REFUSED,
    Reach,
    by_config,
    outgoing,
    push_all,
    push_chunks,
    push_redirected_on_host,
    push_through_fault,
    served,
)
from tests.connectors.fakes.catalogs import (
    API_KEY,
    EMAIL,
    PASSWORD,
    Catalog,
    medusa,
    saleor,
    squarespace,
)
from tests.connectors.fakes.faults import Faults
from tests.connectors.helpers import recorder
from tests.loopback import serve

SALEOR_OPTIONS = {"product_type_id": "PT", "channel_id": "CH", "warehouse_id": "WH"}
PLATFORMS: dict[str, tuple[Callable[[Catalog], Starlette], str, dict[str, str], dict[str, str]]] = {
    "squarespace": (squarespace, "/1.0/commerce/products", {"api_key": API_KEY},
                    {"store_page_id": "page-1"}),
    "saleor": (saleor, "/graphql/", {"token": API_KEY}, SALEOR_OPTIONS),
    "medusa": (medusa, "/admin/products/batch", {"api_key": API_KEY}, {}),
}  # fmt: skip
# The auth modes whose tokens expire: a staff user's session JWT (Saleor's tokenCreate,
# Medusa's /auth/user/emailpass). Saleor's app tokens and Medusa's secret API keys do
# not expire, nor does the API key the Squarespace adapter takes (Squarespace's OAuth
# access tokens do, but renewing them rotates a refresh token the adapter would have
# to store, and adapters never write to our database).
SESSIONS = {"saleor": {"email": EMAIL, "password": PASSWORD},
            "medusa": {"email": EMAIL, "password": PASSWORD}}  # fmt: skip


@asynccontextmanager
async def adapter_served(
    platform: str, catalog: Catalog, faults: Faults, credentials: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, PlatformAdapter]]:
    """exactly_once.served for the platform's fake: its base URL and the adapter."""
    app, _path, _default, _options = PLATFORMS[platform]
    async with served(app(catalog), reach(platform, credentials), faults) as (adapter, base):
        yield base, adapter


def reach(platform: str, credentials: dict[str, str] | None = None) -> Reach:
    _app, _path, default, options = PLATFORMS[platform]
    return by_config(
        lambda base: ConnectorConfig(platform, base, credentials or default, options=options)
    )


def assert_each_exists_once(
    catalog: Catalog, products: Sequence[OutgoingProduct], links: dict[object, str]
) -> None:
    assert len(catalog.records) == len(products)
    assert sorted(catalog.creates) == sorted({p.sku for p in products})  # each created once
    records = {f"{r.id}:{r.variant}" for r in catalog.records.values()}
    assert set(links) == {p.product_id for p in products} and set(links.values()) == records


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_250_products_exist_once_whatever_the_platform_answers(
    platform: str, fault: str
) -> None:
    catalog, products = Catalog(), outgoing()
    app, path, _default, _options = PLATFORMS[platform]
    links, _rule = await push_through_fault(app(catalog), reach(platform), fault, path, products)
    assert_each_exists_once(catalog, products, links)


@pytest.mark.parametrize("platform", sorted(SESSIONS))
async def test_250_products_exist_once_when_the_session_token_expires(platform: str) -> None:
    catalog = Catalog(token_calls=2)
    products = outgoing()

    async with adapter_served(platform, catalog, Faults(), SESSIONS[platform]) as (_, adapter):
        links = await push_all(adapter, products)

    assert catalog.refusals >= 1 and len(catalog.sessions) >= 2  # refused, signed in again
    assert_each_exists_once(catalog, products, links)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_a_write_redirected_within_its_host_is_followed_and_made_once(
    platform: str,
) -> None:
    catalog, products = Catalog(), outgoing()
    app, path, _default, _options = PLATFORMS[platform]
    links, _redirect = await push_redirected_on_host(app(catalog), reach(platform), path,
                                                     products)  # fmt: skip
    assert_each_exists_once(catalog, products, links)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_a_write_redirected_to_another_host_fails_without_sending_it_there(
    platform: str,
) -> None:
    catalog, faults = Catalog(), Faults()
    seen, elsewhere = recorder()
    products = outgoing()

    async with (
        adapter_served(platform, catalog, faults) as (_base, adapter),
        serve(elsewhere, host="127.0.0.2") as other,
    ):
        moved = faults.redirect(PLATFORMS[platform][1], other, status=307, method="POST", at=2)
        outcomes = await push_chunks(adapter, products)

    assert moved.fired >= 1
    assert seen == []  # neither a credential header, whatever its name, nor a product
    failed = [o for o in outcomes if not o.ok]
    assert failed and all(REFUSED in (o.error or "") for o in failed)
    assert sorted(catalog.creates) == sorted(set(catalog.creates))  # nothing created twice
    records = {f"{r.id}:{r.variant}" for r in catalog.records.values()}
    assert {o.external_id for o in outcomes if o.ok} <= records


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_a_resumed_push_looks_before_creating_what_a_crashed_run_may_have_sent(
    platform: str,
) -> None:
    catalog = Catalog()
    products = outgoing(20)
    for product in products[:10]:  # created by a run that crashed before recording them
        catalog.create(product.sku, handle_for(product.sku))

    async with adapter_served(platform, catalog, Faults()) as (_base, adapter):
        links = await push_all(adapter, products, uncertain=True)
    assert len(catalog.records) == 20 and len(catalog.creates) == 20
    records = {f"{r.id}:{r.variant}" for r in catalog.records.values()}
    assert set(links.values()) == records
