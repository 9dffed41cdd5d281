"""The Connectors REST API as the spec documents it, the platform routers built on the
same sync base, credentials at rest, scopes and cross-account isolation."""

import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from models import Connector
from pim.crypto import Cipher
from pim.runtime import Runtime
from pim.settings import Settings
from resolvers.connectors import credentials_of
from tests.conftest import MakeKey
from tests.connectors.conftest import Store, create_connector, make_products, sync
from tests.connectors.fakes.stores import WOO_SECRET

SPEC_PRODUCT_IDS = ["550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440001"]


async def test_list_answers_only_with_the_trailing_slash(
    open_client: httpx.AsyncClient, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    created = await create_connector(open_client, key, woo.fields(name="My Shopify Store"))

    response = await open_client.get("/api/v1/connectors/", headers=key.bearer)
    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "id": created["id"],
                "name": "My Shopify Store",
                "platform": "woocommerce",
                "status": "active",
                "last_sync_at": None,
                "created_at": created["created_at"],
            }
        ],
        "meta": {"total": 1, "page": 1, "per_page": 50, "total_pages": 1, "has_next": False,
                 "has_previous": False},
    }  # fmt: skip
    no_slash = await open_client.get("/api/v1/connectors", headers=key.bearer)
    assert no_slash.status_code == 404
    assert no_slash.json()["code"] == "not_found"
    assert "location" not in no_slash.headers
    no_slash_create = await open_client.post("/api/v1/connectors", json={}, headers=key.bearer)
    assert no_slash_create.status_code == 404


async def test_get_test_and_the_four_sync_operations_answer_as_documented(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    connector = await create_connector(open_client, key, woo.fields())
    cid = connector["id"]

    got = (await open_client.get(f"/api/v1/connectors/{cid}", headers=key.bearer)).json()
    assert {k: got[k] for k in ("id", "name", "platform", "status", "sync_stats", "last_sync_at")} == {
        "id": cid, "name": "Boutique woocommerce", "platform": "woocommerce", "status": "active",
        "sync_stats": {"products_synced": 0, "products_pending": 0, "last_error": None},
        "last_sync_at": None,
    }  # fmt: skip

    tested = await open_client.post(f"/api/v1/connectors/{cid}/test", headers=key.bearer)
    assert tested.status_code == 200
    body = tested.json()
    assert set(body) == {"success", "platform", "latency_ms", "message"}
    assert body["success"] is True and body["platform"] == "woocommerce"
    assert body["message"].startswith("Connection successful")
    assert isinstance(body["latency_ms"], int)
    assert woo.fake.writes == 0  # a test syncs nothing

    # The spec's own product ids exist in no catalog: the same request with ours.
    ids = [str(i) for i in await make_products(open_runtime, key, 2)]
    assert len(SPEC_PRODUCT_IDS) == len(ids)
    pushed = await open_client.post(
        f"/api/v1/connectors/{cid}/sync/push-products",
        headers={**key.bearer, "Content-Type": "application/json"},
        content=orjson.dumps({"product_ids": ids}),
    )
    assert pushed.status_code == 202
    assert set(pushed.json()) == {"job_id", "status", "products_queued"}
    assert pushed.json()["status"] == "queued" and pushed.json()["products_queued"] == 2
    uuid.UUID(pushed.json()["job_id"])
    for kind in ("pull-products", "push-stock", "push-prices"):
        started = await open_client.post(
            f"/api/v1/connectors/{cid}/sync/{kind}", headers=key.bearer
        )
        assert started.status_code == 202
        assert set(started.json()) == {"job_id", "status"}
        assert started.json()["status"] == "queued"


async def test_create_update_delete_and_credentials_never_shown(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    created = await create_connector(open_client, key, woo.fields(options={"currency": "EUR"}))
    assert created["credentials_set"] == ["consumer_key", "consumer_secret"]
    assert WOO_SECRET not in orjson.dumps(created).decode()

    async with open_runtime.db.transaction() as session:
        row = await session.scalar(
            select(Connector).where(Connector.id == uuid.UUID(created["id"]))
        )
    assert row is not None and row.credentials is not None
    assert WOO_SECRET not in row.credentials  # a Fernet token at rest
    assert credentials_of(row, open_runtime.settings)["consumer_secret"] == WOO_SECRET

    updated = await open_client.patch(
        f"/api/v1/connectors/{created['id']}",
        json={"name": "Renommé", "credentials": {"consumer_secret": None, "token": "t"}},
        headers=key.bearer,
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "Renommé"
    assert updated.json()["credentials_set"] == ["consumer_key", "token"]
    platform_change = await open_client.patch(
        f"/api/v1/connectors/{created['id']}", json={"platform": "shopify"}, headers=key.bearer
    )
    assert platform_change.status_code == 422

    deleted = await open_client.delete(f"/api/v1/connectors/{created['id']}", headers=key.bearer)
    assert deleted.status_code == 204
    gone = await open_client.get(f"/api/v1/connectors/{created['id']}", headers=key.bearer)
    assert gone.status_code == 404


def test_credentials_stay_readable_after_a_new_key_is_added(tmp_path: Path) -> None:
    old = Settings(data_dir=tmp_path, secret_key="ancien-secret")
    connector = Connector(
        credentials=Cipher(["ancien-secret"]).encrypt('{"access_token": "shpat_x"}')
    )
    rotated = Settings(data_dir=tmp_path, secret_key="nouveau-secret,ancien-secret")
    assert credentials_of(connector, old) == {"access_token": "shpat_x"}
    assert credentials_of(connector, rotated) == {"access_token": "shpat_x"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "woocommerce"}, "name"),
        ({"name": "X", "platform": "oscommerce"}, "platform"),
        ({"name": "X", "platform": "shopify", "base_url": "pas une url"}, "base_url"),
        ({"name": "X", "platform": "shopify", "base_url": "ftp://shop.example"}, "base_url"),
        ({"name": "X", "platform": "shopify", "colour": "blue"}, "colour"),
        ({"name": "X", "platform": "shopify", "credentials": "secret"}, "credentials"),
    ],
)
async def test_bad_connector_input_is_refused_with_the_field(
    client: httpx.AsyncClient, make_key: MakeKey, body: dict[str, object], field: str
) -> None:
    key = await make_key()
    response = await client.post("/api/v1/connectors/", json=body, headers=key.bearer)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_malformed_json_gets_the_plain_error(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    response = await client.post("/api/v1/connectors/", content=b"{oops", headers=key.bearer)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    bad_id = await client.get("/api/v1/connectors/nope", headers=key.bearer)
    assert bad_id.status_code == 422 and bad_id.json()["field"] == "connector_id"


async def test_platform_routers_share_the_connector_routes_and_keep_to_their_platform(
    open_client: httpx.AsyncClient, make_key: MakeKey, woo: Store
) -> None:
    key = await make_key()
    shop = await create_connector(open_client, key, woo.fields())
    magento = await create_connector(
        open_client, key, {"name": "M2", "base_url": woo.url, "credentials": {"access_token": "t"}},
        prefix="/api/v1/magento",
    )  # fmt: skip
    assert magento["platform"] == "magento"

    woo_list = (await open_client.get("/api/v1/woocommerce/", headers=key.bearer)).json()
    assert [c["id"] for c in woo_list["items"]] == [shop["id"]]
    magento_list = (await open_client.get("/api/v1/magento/", headers=key.bearer)).json()
    assert [c["id"] for c in magento_list["items"]] == [magento["id"]]
    assert (await open_client.get("/api/v1/magento", headers=key.bearer)).status_code == 404

    other = await open_client.get(f"/api/v1/magento/{shop['id']}", headers=key.bearer)
    assert other.status_code == 404
    tested = await open_client.post(f"/api/v1/woocommerce/{shop['id']}/test", headers=key.bearer)
    assert tested.json()["success"] is True
    queued = await open_client.post(
        f"/api/v1/woocommerce/{shop['id']}/sync/push-stock", headers=key.bearer
    )
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    wrong = await open_client.post(
        "/api/v1/magento/", json={"name": "X", "platform": "woocommerce"}, headers=key.bearer
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "platform"


async def test_reading_needs_connectors_read_and_every_change_settings_manage(
    open_client: httpx.AsyncClient, make_key: MakeKey, woo: Store
) -> None:
    admin = await make_key(["settings:manage"])
    cid = (await create_connector(open_client, admin, woo.fields()))["id"]
    reader = await make_key(["connectors:read"], account=admin.account)
    stranger = await make_key(["products:read", "products:write"], account=admin.account)
    base = "/api/v1/connectors"
    reads = [("GET", f"{base}/"), ("GET", f"{base}/{cid}"), ("GET", f"{base}/{cid}/sync/jobs")]
    writes = [
        ("POST", f"{base}/"), ("PATCH", f"{base}/{cid}"), ("POST", f"{base}/{cid}/test"),
        ("POST", f"{base}/{cid}/sync/push-products"), ("POST", f"{base}/{cid}/sync/pull-products"),
        ("POST", f"{base}/{cid}/sync/push-stock"), ("POST", f"{base}/{cid}/sync/push-prices"),
        ("DELETE", f"{base}/{cid}"),
    ]  # fmt: skip
    for method, url in reads:
        assert (await open_client.request(method, url, headers=reader.bearer)).status_code == 200
        assert (await open_client.request(method, url, headers=stranger.bearer)).status_code == 403
    for method, url in writes:
        body = {"name": "X"} if method in ("POST", "PATCH") and url.endswith(("/", cid)) else None
        for key in (reader, stranger):
            response = await open_client.request(method, url, json=body, headers=key.bearer)
            assert response.status_code == 403, (method, url)
            assert response.json()["code"] == "forbidden"
    assert (await open_client.get(f"{base}/", headers={})).status_code == 401
    assert (await open_client.delete(f"{base}/{cid}", headers=admin.bearer)).status_code == 204


async def test_another_account_sees_and_touches_nothing(
    open_client: httpx.AsyncClient, make_key: MakeKey, woo: Store
) -> None:
    owner = await make_key()
    cid = (await create_connector(open_client, owner, woo.fields()))["id"]
    other = await make_key()
    listing = (await open_client.get("/api/v1/connectors/", headers=other.bearer)).json()
    assert listing["items"] == [] and listing["meta"]["total"] == 0
    for method, url in [
        ("GET", f"/api/v1/connectors/{cid}"), ("PATCH", f"/api/v1/connectors/{cid}"),
        ("POST", f"/api/v1/connectors/{cid}/test"),
        ("POST", f"/api/v1/connectors/{cid}/sync/push-products"),
        ("GET", f"/api/v1/woocommerce/{cid}"), ("DELETE", f"/api/v1/connectors/{cid}"),
    ]:  # fmt: skip
        body = {"name": "pris"} if method == "PATCH" else None
        response = await open_client.request(method, url, json=body, headers=other.bearer)
        assert response.status_code == 404, (method, url)
    still = await open_client.get(f"/api/v1/connectors/{cid}", headers=owner.bearer)
    assert still.json()["name"] == "Boutique woocommerce"


async def test_a_connector_without_a_credential_its_platform_requires_is_told_which(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey, woo: Store
) -> None:
    # An SFCC connector saved without its API client: the test and a sync name the
    # missing key, where both had been an internal error (a KeyError in the adapter).
    key = await make_key()
    await make_products(open_runtime, key, 2)
    cid = (await create_connector(open_client, key, {
        "name": "B2C", "platform": "sfcc", "base_url": woo.url, "credentials": {},
    }))["id"]  # fmt: skip
    missing = "sfcc : « client_id » manquant dans credentials"

    tested = await open_client.post(f"/api/v1/connectors/{cid}/test", headers=key.bearer)
    assert tested.status_code == 200
    assert (tested.json()["success"], tested.json()["message"]) == (False, missing)
    job = await sync(open_client, open_runtime, key, cid, "push-products")
    assert (job["status"], job["last_error"]) == ("failed", missing)


async def test_a_connector_saved_without_its_address_fails_its_sync_once_with_why(
    open_client: httpx.AsyncClient, open_runtime: Runtime, make_key: MakeKey
) -> None:
    # Medusa has no default address: the job stops as a whole, with the reason, rather
    # than recording the same error against every product.
    key = await make_key()
    await make_products(open_runtime, key, 3)
    cid = (await create_connector(open_client, key, {
        "name": "Medusa", "platform": "medusa", "credentials": {"api_key": "k"},
    }))["id"]  # fmt: skip
    job = await sync(open_client, open_runtime, key, cid, "push-products")
    assert job["status"] == "failed"
    assert "base_url du connecteur manquante" in job["last_error"]
