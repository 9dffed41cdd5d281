"""Each product exists once on the platform, whatever the platform answers: a write
committed and then answered 502, a connection dropped or hung after the commit, and
throttling in the middle of a push, an access token that expires, a write redirected
within its host or to another one. The fakes keep every create as a separate record
(or refuse a duplicate SKU, as WooCommerce and BigCommerce do), so a create sent
twice shows."""

import json
import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from models import ConnectorProductLink
from pim.runtime import Runtime
from tests.conftest import MakeKey
from tests.connectors.conftest import Store, create_connector, make_products, served, sync
from tests.connectors.exactly_once import FAULTS as MATRIX_FAULTS
from tests.connectors.exactly_once import REFUSED
from tests.connectors.fakes.stores import (
    MAGENTO_ADMIN,
    MAGENTO_PASSWORD,
    SHOPIFY_CLIENT,
    THROTTLED,
)
from tests.connectors.helpers import recorder
from tests.loopback import serve

# Where each platform's product writes go (a part of the path).
WRITES = {
    "woocommerce": "/products/batch",
    "shopify": "/graphql.json",
    "bigcommerce": "/v3/catalog/products",
    "magento": "/async/bulk",
}


def throttle(store: Store, path: str) -> None:
    if store.platform == "shopify":
        store.faults.throttle(path, status=200, headers={"Content-Type": "application/json"},
                              body=json.dumps(THROTTLED).encode(), at=2, times=2)  # fmt: skip
    else:
        status, headers = store.fake.throttle
        store.faults.throttle(path, status=status, headers=headers, method="POST", at=2, times=2)


# Platforms whose credentials expire in one of our adapter's auth modes: those
# credentials, the header carrying the token, and the path that hands out a new one.
# The others have none that expire: BigCommerce's API account tokens last until
# revoked; WooCommerce signs each request with a consumer key and secret.
EXPIRING: dict[str, tuple[dict[str, str], str, str]] = {
    # Admin tokens last 4 hours; integration tokens (access_token) do not expire.
    "magento": ({"username": MAGENTO_ADMIN, "password": MAGENTO_PASSWORD}, "authorization",
                "/integration/admin/token"),
    # A Dev Dashboard app's token (client credentials grant) lasts 24 hours; an admin
    # app's (access_token) until the app is uninstalled.
    "shopify": (SHOPIFY_CLIENT, "x-shopify-access-token", "/admin/oauth/access_token"),
}  # fmt: skip


def on_store(fault: str) -> Callable[[Store, str], object]:
    return lambda store, path: MATRIX_FAULTS[fault](store.faults, path)


# The matrix's faults, but throttling as each platform says it.
FAULTS = {**{fault: on_store(fault) for fault in MATRIX_FAULTS}, "throttled mid-push": throttle}


async def links_of(runtime: Runtime, connector_id: str) -> dict[uuid.UUID, str | None]:
    async with runtime.db.transaction() as session:
        rows = await session.execute(
            select(ConnectorProductLink.product_id, ConnectorProductLink.external_id).where(
                ConnectorProductLink.connector_id == uuid.UUID(connector_id)
            )
        )
        return {product_id: external_id for product_id, external_id in rows}


async def messages_of(runtime: Runtime, connector_id: str) -> list[str]:
    async with runtime.db.transaction() as session:
        rows = await session.scalars(
            select(ConnectorProductLink.last_message).where(
                ConnectorProductLink.connector_id == uuid.UUID(connector_id)
            )
        )
        return [message for message in rows if message]


def remote_key(platform: str, external_id: str) -> str:
    """The fake's record id (or SKU, Magento's key) an external id designates."""
    return external_id if platform == "magento" else external_id.rsplit("/", 1)[-1]


async def assert_exactly_once(
    runtime: Runtime, store: Store, connector_id: str, product_ids: list[uuid.UUID]
) -> None:
    fake = store.fake
    assert len(fake.products) == len(product_ids)
    assert sorted(fake.creates) == sorted(set(fake.creates))  # no SKU created twice
    links = await links_of(runtime, connector_id)
    assert set(links) == set(product_ids)
    external = [remote_key(store.platform, e) for e in links.values() if e]
    assert len(external) == len(set(external)) == len(product_ids)
    remote = (
        {p.sku for p in fake.products.values()}
        if store.platform == "magento"
        else set(fake.products)
    )
    assert set(external) == remote


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_250_products_exist_once_whatever_the_platform_answers(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store,
    fault: str,
) -> None:  # fmt: skip
    key = await make_key()
    product_ids = await make_products(open_runtime, key, 250)
    connector = await create_connector(open_client, key, store.fields())
    FAULTS[fault](store, WRITES[store.platform])

    job = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert store.faults.rules[0].fired >= 1  # the fault did happen
    assert (job["status"], job["succeeded"], job["failed"]) == ("completed", 250, 0), job
    await assert_exactly_once(open_runtime, store, connector["id"], product_ids)


@pytest.mark.parametrize("platform", sorted(EXPIRING))
async def test_250_products_exist_once_when_the_access_token_expires_mid_push(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, platform: str
) -> None:
    credentials, header, login = EXPIRING[platform]
    key = await make_key()
    product_ids = await make_products(open_runtime, key, 250)
    async with served(platform) as store:
        expiry = store.faults.expire_tokens(header, calls=3, login=login)
        connector = await create_connector(open_client, key, store.fields(credentials=credentials))
        job = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert (job["status"], job["succeeded"], job["failed"]) == ("completed", 250, 0), job
    await assert_exactly_once(open_runtime, store, connector["id"], product_ids)
    logins = [path for _method, path in store.fake.requests if login in path]
    assert expiry.refusals >= 1 and len(logins) >= 2  # refused, then signed in again


async def test_a_write_redirected_within_its_host_is_followed_and_made_once(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store
) -> None:
    key = await make_key()
    product_ids = await make_products(open_runtime, key, 250)
    connector = await create_connector(open_client, key, store.fields())
    moved = store.faults.redirect(WRITES[store.platform], store.url, status=307, method="POST",
                                  at=2, times=1)  # fmt: skip

    job = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert moved.fired == 1
    assert (job["status"], job["succeeded"], job["failed"]) == ("completed", 250, 0), job
    await assert_exactly_once(open_runtime, store, connector["id"], product_ids)


async def test_a_write_redirected_to_another_host_fails_without_sending_it_there(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store
) -> None:
    seen, elsewhere = recorder()
    key = await make_key()
    product_ids = await make_products(open_runtime, key, 250)
    connector = await create_connector(open_client, key, store.fields())
    async with serve(elsewhere, host="127.0.0.2") as other:
        moved = store.faults.redirect(WRITES[store.platform], other, status=307, method="POST",
                                      at=2)  # fmt: skip
        job = await sync(open_client, open_runtime, key, connector["id"], "push-products")

    assert moved.fired >= 1
    assert seen == []  # neither a credential header, whatever its name, nor a product
    assert job["status"] == "completed" and job["failed"] > 0, job
    assert job["succeeded"] + job["failed"] == 250
    messages = await messages_of(open_runtime, connector["id"])
    assert any(REFUSED in m for m in messages)
    fake = store.fake
    assert sorted(fake.creates) == sorted(set(fake.creates))  # nothing created twice
    links = await links_of(open_runtime, connector["id"])
    linked = {remote_key(store.platform, e) for e in links.values() if e}
    assert len(linked) == job["succeeded"] and set(links) <= set(product_ids)


async def test_a_woocommerce_batch_committed_then_answered_502_is_not_created_again(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    """What a WordPress host behind a proxy does when PHP runs past the gateway timeout:
    the first 100 were created, the answer lost; replaying the batch made them twice."""
    key = await make_key()
    product_ids = await make_products(open_runtime, key, 150)
    connector = await create_connector(open_client, key, woo.fields())
    woo.faults.fail_after_commit("/products/batch", at=1)

    job = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert (job["status"], job["succeeded"], job["failed"]) == ("completed", 150, 0), job
    await assert_exactly_once(open_runtime, woo, connector["id"], product_ids)
    lookups = [r for r in woo.fake.requests if r == ("GET", "/wp-json/wc/v3/products")]
    assert len(lookups) == 1  # the lost batch's products were looked up by SKU, once
