"""Sync jobs on the `connectors` queue (a real arq worker on the real stack), end to end
against each platform's fake: chunks, links and hashes, stock, prices, pull, failures."""

import uuid

import httpx

from pim.jobs import InProcessQueue
from pim.runtime import Runtime
from resolvers import products
from resolvers.product_writes import WriteItem, write_products
from tests.conftest import MakeKey
from tests.connectors.conftest import (
    Store,
    create_connector,
    ean13,
    make_price_list,
    make_products,
    sync,
)
from tests.connectors.fakes.google_merchant import google_fake
from tests.jobs_helper import run_jobs
from tests.loopback import serve

# Product write requests for 250 new products: one per chunk of 100 (3), except Shopify,
# which takes 25 aliased productSet per request (4 + 4 + 2), and BigCommerce, whose API
# creates one product per POST (its batch PUT only updates).
WRITES_FOR_250 = {"woocommerce": 3, "magento": 3, "shopify": 10, "bigcommerce": 250}


async def test_push_sends_chunks_then_only_what_changed(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store
) -> None:
    key = await make_key()
    ids = await make_products(open_runtime, key, 250)
    connector = await create_connector(open_client, key, store.fields())

    first = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert first["status"] == "completed", first
    assert (first["total"], first["succeeded"], first["failed"]) == (250, 250, 0)
    assert store.fake.writes == WRITES_FOR_250[store.platform]
    assert len(store.fake.products) == 250

    second = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert (second["skipped"], second["succeeded"]) == (250, 0)
    assert store.fake.writes == WRITES_FOR_250[store.platform]
    detail = (
        await open_client.get(f"/api/v1/connectors/{connector['id']}", headers=key.bearer)
    ).json()
    assert detail["sync_stats"] == {
        "products_synced": 250,
        "products_pending": 0,
        "last_error": None,
    }
    assert detail["last_sync_at"] is not None

    async with open_runtime.db.transaction() as session:
        await write_products(
            session, key.caller(), items=[WriteItem({"name": "Nouveau nom"}, ids[7])]
        )
    third = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert (third["succeeded"], third["skipped"]) == (1, 249)
    assert store.fake.writes == WRITES_FOR_250[store.platform] + 1
    assert "Nouveau nom" in {p.name for p in store.fake.products.values()}
    assert len(store.fake.products) == 250  # updated in place, by the stored platform id


async def test_push_stock_sends_quantities_and_prices_follow_the_channel(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store
) -> None:
    key = await make_key()
    ids = await make_products(open_runtime, key, 3)
    await make_price_list(open_runtime, key, "web", {ids[0]: 7.25})
    connector = await create_connector(open_client, key, store.fields(channel="web"))
    await sync(open_client, open_runtime, key, connector["id"], "push-products")
    for remote in store.fake.products.values():
        remote.stock, remote.price = None, None

    stock = await sync(open_client, open_runtime, key, connector["id"], "push-stock")
    assert (stock["status"], stock["succeeded"]) == ("completed", 3)
    by_name = {p.name: p for p in store.fake.products.values()}
    assert [by_name[f"Produit {i}"].stock for i in range(3)] == [0, 1, 2]
    assert all(p.price is None for p in by_name.values())  # quantities only

    prices = await sync(open_client, open_runtime, key, connector["id"], "push-prices")
    assert (prices["status"], prices["succeeded"]) == ("completed", 3)
    assert [by_name[f"Produit {i}"].price for i in range(3)] == [7.25, 11.0, 12.0]


async def test_pull_matches_by_external_id_then_ean_and_creates_the_rest(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, store: Store
) -> None:
    key = await make_key()
    linked, by_ean = await make_products(open_runtime, key, 2)
    connector = await create_connector(open_client, key, store.fields())
    await sync(open_client, open_runtime, key, connector["id"], "push-products",
               {"product_ids": [str(linked)]})  # fmt: skip
    [remote_linked] = store.fake.products.values()
    remote_linked.name = "Renommé sur la plateforme"
    async with open_runtime.db.transaction() as session:
        ean_of_second = (await products.get_product(session, key.caller(), id=by_ean)).product.ean
    fake = store.fake
    fake.create("OTHER-SKU", name="Même EAN", ean=ean_of_second, price=5.0)
    fake.create("NEW-1", name="Nouveau", ean=ean13(), price=3.0)

    pulled = await sync(open_client, open_runtime, key, connector["id"], "pull-products")
    assert pulled["status"] == "completed", pulled
    assert (pulled["processed"], pulled["created"], pulled["failed"]) == (3, 1, 0)
    async with open_runtime.db.transaction() as session:
        first = (await products.get_product(session, key.caller(), id=linked)).product
        second = (await products.get_product(session, key.caller(), id=by_ean)).product
        page = await products.list_products(session, key.caller(), limit=10)
    assert first.name == "Renommé sur la plateforme"
    assert second.name == "Même EAN"
    assert page.total == 3


async def test_a_pull_interrupted_by_a_transient_error_resumes_where_it_was(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    connector = await create_connector(open_client, key, woo.fields())
    for i in range(250):
        woo.fake.create(f"PULL-{i}", name=f"Distant {i}", ean=ean13(), price=1.0 + i)
    woo.fake.errors_at[2] = (503, {})  # the second page fails once

    pulled = await sync(open_client, open_runtime, key, connector["id"], "pull-products")
    assert (pulled["status"], pulled["processed"], pulled["created"]) == ("completed", 250, 250)
    pages = [path for method, path in woo.fake.requests if method == "GET"]
    assert len(pages) == 4  # page 1, page 2 refused, page 2 again, page 3: never page 1 twice

    woo.fake.errors.append((401, {}))
    refused = await sync(open_client, open_runtime, key, connector["id"], "pull-products")
    assert refused["status"] == "failed" and "HTTP 401" in refused["last_error"]


async def test_a_failing_chunk_never_aborts_the_others(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    await make_products(open_runtime, key, 250)
    connector = await create_connector(open_client, key, woo.fields())
    woo.fake.errors.append((400, {}))  # the first chunk is refused for good

    job = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert job["status"] == "completed"
    assert (job["succeeded"], job["failed"]) == (150, 100)
    assert "HTTP 400" in job["last_error"]
    detail = (
        await open_client.get(f"/api/v1/connectors/{connector['id']}", headers=key.bearer)
    ).json()
    assert detail["sync_stats"]["products_pending"] == 100
    assert "HTTP 400" in detail["sync_stats"]["last_error"]

    # A transient error is retried (Retry-After honoured); only the failed ones are sent.
    woo.fake.errors.extend([(429, {"Retry-After": "0"}), (503, {})])
    retried = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert (retried["succeeded"], retried["skipped"], retried["failed"]) == (100, 150, 0)
    assert len(woo.fake.products) == 250


async def test_a_connector_url_naming_a_private_address_is_refused_at_creation(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    for url in (
        "http://shop.example.com",  # plain http
        "https://localhost:8443",
        "https://2130706433",
        "https://0x7f000001:8443",
        "https://127.1",
        "https://0177.0.0.1",
        "https://[64:ff9b::7f00:1]",
        "https://[2002:a9fe:a9fe::1]",  # 6to4 of 169.254.169.254
        "https://[::127.0.0.1]",
    ):
        refused = await client.post(
            "/api/v1/connectors/",
            json={"name": "Interne", "platform": "woocommerce", "base_url": url},
            headers=key.bearer,
        )
        assert refused.status_code == 422, url
        assert refused.json()["field"] == "base_url"
    listed = await client.get("/api/v1/connectors/", headers=key.bearer)
    assert listed.json()["meta"]["total"] == 0


async def test_a_connector_whose_address_is_no_longer_allowed_is_refused_at_connect_time(
    client: httpx.AsyncClient, open_client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    # Saved while loopback was allowed (as a name can resolve elsewhere later).
    created = await open_client.post(
        "/api/v1/connectors/",
        json={"name": "Interne", "platform": "woocommerce", "base_url": "https://localhost:8443",
              "credentials": {"consumer_key": "ck", "consumer_secret": "cs"}},
        headers=key.bearer,
    )  # fmt: skip
    assert created.status_code == 201
    tested = await client.post(
        f"/api/v1/connectors/{created.json()['id']}/test", headers=key.bearer
    )
    assert tested.status_code == 200
    body = tested.json()
    assert body["success"] is False and body["platform"] == "woocommerce"
    assert "destination refusée" in body["message"]


async def test_push_of_unknown_or_malformed_product_ids_is_refused(
    open_client: httpx.AsyncClient, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    connector = await create_connector(open_client, key, woo.fields())
    url = f"/api/v1/connectors/{connector['id']}/sync/push-products"
    for body, field in (
        ({"product_ids": ["pas-un-uuid"]}, "product_ids[0]"),
        ({"product_ids": [str(uuid.uuid4())]}, "product_ids"),
        ({"product_ids": "x"}, "product_ids"),
    ):
        response = await open_client.post(url, json=body, headers=key.bearer)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    malformed = await open_client.post(url, content=b"{nope", headers=key.bearer)
    assert malformed.status_code == 422 and malformed.json()["code"] == "validation_failed"


async def test_an_inactive_connector_does_not_sync(
    open_client: httpx.AsyncClient, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    connector = await create_connector(open_client, key, woo.fields(status="inactive"))
    response = await open_client.post(
        f"/api/v1/connectors/{connector['id']}/sync/push-stock", headers=key.bearer
    )
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


async def test_a_cancelled_job_does_not_run_and_cannot_be_cancelled_twice(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    await make_products(open_runtime, key, 5)
    connector = await create_connector(open_client, key, woo.fields())
    base = f"/api/v1/connectors/{connector['id']}/sync"
    job_id = (await open_client.post(f"{base}/push-products", headers=key.bearer)).json()["job_id"]

    cancelled = await open_client.post(f"{base}/jobs/{job_id}/cancel", headers=key.bearer)
    if cancelled.status_code == 409:
        # The in-process queue may have run it already: cancelling a finished job is refused.
        assert cancelled.json()["code"] == "conflict"
        return
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await run_jobs(open_runtime, queue="connectors")
    job = (await open_client.get(f"{base}/jobs/{job_id}", headers=key.bearer)).json()
    assert job["status"] == "cancelled"  # the job's end did not overwrite it
    if not isinstance(open_runtime.queue, InProcessQueue):
        # On arq the job waited in Redis: the worker found it cancelled and sent nothing.
        assert (job["processed"], woo.fake.writes) == (0, 0)
    again = await open_client.post(f"{base}/jobs/{job_id}/cancel", headers=key.bearer)
    assert again.status_code == 409


async def test_a_sync_to_a_private_address_is_refused_at_connect_time(
    client: httpx.AsyncClient, open_client: httpx.AsyncClient, runtime: Runtime, make_key: MakeKey
) -> None:
    key = await make_key()
    await make_products(runtime, key, 3)
    created = await open_client.post(
        "/api/v1/connectors/",
        json={"name": "Interne", "platform": "magento", "base_url": "https://localhost:8443",
              "credentials": {"access_token": "t"}},
        headers=key.bearer,
    )  # fmt: skip
    job = await sync(client, runtime, key, created.json()["id"], "push-products")
    assert (job["status"], job["succeeded"], job["failed"]) == ("completed", 0, 3)
    assert "destination refusée" in job["last_error"]


async def test_a_retired_platform_api_fails_the_job_instead_of_each_product(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey
) -> None:
    key = await make_key()
    await make_products(open_runtime, key, 3)
    fake = google_fake(products_retired=True)
    async with serve(fake.app()) as url:
        connector = await create_connector(open_client, key, {
            "name": "Merchant Center", "platform": "google_merchant", "base_url": url,
            "credentials": {"client_id": "c", "client_secret": "s", "refresh_token": "1//refresh"},
            "options": {"merchant_id": "123456", "data_source": "777", "token_url": f"{url}/token"},
        })  # fmt: skip
        job = await sync(open_client, open_runtime, key, connector["id"], "push-products")
    assert job["status"] == "failed"
    assert "retirée" in job["last_error"]
    assert (job["succeeded"], job["failed"]) == (0, 0)
