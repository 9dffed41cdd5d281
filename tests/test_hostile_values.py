"""Hostile values on every surface: NUL bytes, integers past their column, oversized text,
paging past any table and cron schedules that never fire. Each is a 4xx in the surface's
own envelope that names the field, writes nothing and shows nothing internal."""

import re
from typing import Any

import httpx
import pytest

from tests.conftest import Key, gql

NUL = "a\x00b"
INT32_OVER = 2**31
EAN = "3760000000001"
NESTED_300: Any = "x"
for _ in range(300):
    NESTED_300 = [NESTED_300]
# What a leaked database error or traceback would show.
INTERNALS = re.compile(
    r"Traceback|sqlalchemy|asyncpg|aiosqlite|sqlite3|psycopg|INSERT INTO|SELECT |"
    r"UPDATE |\[SQL|parameters:|OverflowError|DataError|File \"",
    re.IGNORECASE,
)


def assert_clean(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert not INTERNALS.search(response.text), response.text


def ext_errors(response: httpx.Response) -> list[str]:
    body = response.json()
    assert set(body) == {"success", "data", "meta", "errors"} and body["success"] is False
    assert body["data"] is None
    errors: list[str] = body["errors"]
    return errors


def windev_message(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"success", "code", "message", "data", "count"}
    assert body["success"] is False and body["code"] == response.status_code
    message: str = body["message"]
    return message


def plain_fields(response: httpx.Response) -> list[str]:
    body = response.json()
    assert set(body) == {"detail", "code", "field", "errors"}
    assert body["code"] == "validation_failed"
    return [e["field"] for e in body["errors"]]


async def product_count(client: httpx.AsyncClient, key: Key) -> int:
    response = await client.get("/api/v1/products", headers=key.headers)
    assert response.status_code == 200
    total: int = response.json()["meta"]["total"]
    return total


EXT_BODIES = [
    ({"ean": EAN, "name": NUL}, "name : caractère NUL"),
    ({"ean": EAN, "name": "x", "description": NUL}, "description : caractère NUL"),
    (
        {"ean": EAN, "name": "x", "technical_specs": {"k": [NUL]}},
        "technical_specs.k.0 : caractère NUL",
    ),
    ({"ean": EAN, "name": "x", "technical_specs": {NUL: 1}}, "technical_specs : caractère NUL"),
    (
        {"ean": EAN, "name": "x", "stock": INT32_OVER},
        "stock : doit être inférieur ou égal à 2147483647",
    ),
    (
        {"ean": EAN, "name": "x", "package_weight": INT32_OVER},
        "package_weight : doit être inférieur",
    ),
    ({"ean": EAN, "name": "x", "lead_time_days": 2**63}, "lead_time_days : doit être inférieur"),
    (
        {"ean": EAN, "name": "x", "description": "x" * 10_000_000},
        "description : trop long (au plus 50000",
    ),
    ({"ean": EAN, "name": "x", "short_description": "x" * 5_001}, "short_description : trop long"),
    (
        {"ean": EAN, "name": "x", "technical_specs": {"k": "x" * 70_000}},
        "technical_specs : JSON trop volumineux",
    ),
    (
        # Decoded as a float, which PostgreSQL would write back as a 22-digit integer.
        {"ean": EAN, "name": "x", "technical_specs": {"k": [1.5, 2**70]}},
        "technical_specs : nombre hors limites (entre -9223372036854775808 et",
    ),
    (
        # Refused as the body is decoded (32 levels), before any field is looked at.
        {"ean": EAN, "name": "x", "technical_specs": {"k": NESTED_300}},
        "body : JSON trop imbriqué",
    ),
]


@pytest.mark.parametrize(("body", "error"), EXT_BODIES)
async def test_ext_refuses_hostile_values_with_a_422_naming_the_field(
    client: httpx.AsyncClient, key: Key, body: dict[str, Any], error: str
) -> None:
    response = await client.post("/api/v1/ext/products", json=body, headers=key.headers)
    assert response.status_code == 422
    assert_clean(response)
    assert ext_errors(response)[0].startswith(error)
    assert await product_count(client, key) == 0


async def test_ext_batch_fails_the_hostile_item_alone(client: httpx.AsyncClient, key: Key) -> None:
    items = [
        {"ean": EAN, "name": "ok"},
        {"ean": "3760000000018", "name": "x", "stock": INT32_OVER},
        {"ean": "3760000000025", "name": NUL},
    ]
    response = await client.post(
        "/api/v1/ext/products/batch", json={"products": items}, headers=key.headers
    )
    assert response.status_code == 200
    assert_clean(response)
    results = response.json()["data"]["results"]
    assert [r["status"] for r in results] == ["created", "error", "error"]
    assert results[1]["errors"][0].startswith("stock : doit être inférieur ou égal à 2147483647")
    assert results[2]["errors"][0].startswith("name : caractère NUL")
    assert await product_count(client, key) == 1


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/ext/products?page=99999999999", "page"),
        ("/api/v1/ext/products?page=9223372036854775808", "page"),
        ("/api/v1/ext/products?supplier_code=a%00b", "supplier_code"),
        ("/api/v1/ext/products/a%00b", "ean"),
        ("/api/v1/ext/products/delta?since=2026-01-01T00:00:00Z&page=99999999999", "page"),
        ("/api/v1/ext/products/delta?since=0001-01-01T00:00:00%2B01:00", "since"),
        ("/api/v1/ext/products/delta?since=9999-12-31T23:59:59-01:00", "since"),
        ("/api/v1/ext/products?updated_since=0001-01-01T00:00:00%2B05:00", "updated_since"),
        ("/api/v1/windev/products?page=99999999999", "page"),
        ("/api/v1/windev/products?search=a%00b", "search"),
        ("/api/v1/windev/products?ean=a%00b", "ean"),
        ("/api/v1/windev/products/a%00b", "ref"),
        ("/api/v1/windev/products/since/0?page=99999999999", "page"),
        ("/api/v1/products?skip=9223372036854775808", "skip"),
        ("/api/v1/products?skip=9223372036854775807", "skip"),
        ("/api/v1/products?limit=99999999999999999999", "limit"),
        ("/api/v1/products?search=a%00b", "search"),
        ("/api/v1/products?search=" + "x" * 256, "search"),
        ("/api/v1/imports/jobs?skip=9223372036854775808", "skip"),
        ("/api/v1/imports/automations?skip=9223372036854775808", "skip"),
        ("/api/v1/webhooks?skip=9223372036854775808", "skip"),
        ("/api/v1/connectors/?page=99999999999", "page"),
    ],
)
async def test_hostile_parameters_are_a_422_in_the_surface_envelope(
    client: httpx.AsyncClient, key: Key, path: str, field: str
) -> None:
    response = await client.get(path, headers=key.headers)
    assert response.status_code == 422
    assert_clean(response)
    if path.startswith("/api/v1/ext"):
        named = [e.split(" : ")[0] for e in ext_errors(response)]
    elif path.startswith("/api/v1/windev"):
        named = [windev_message(response).split(" : ")[0]]
    else:
        named = plain_fields(response)
    assert named == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ean": EAN, "name": NUL}, "name"),
        ({"ean": EAN, "name": "x", "stock": INT32_OVER}, "stock"),
        ({"ean": EAN, "name": "x", "min_order_quantity": INT32_OVER}, "min_order_quantity"),
        ({"ean": EAN, "name": "x", "promotional_text": "x" * 5_001}, "promotional_text"),
        ({"ean": EAN, "name": "x", "compatibility": [-(2**64)]}, "compatibility"),
    ],
)
async def test_products_api_refuses_hostile_values(
    client: httpx.AsyncClient, key: Key, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/products", json=body, headers=key.headers)
    assert response.status_code == 422
    assert_clean(response)
    assert plain_fields(response) == [field]
    assert await product_count(client, key) == 0


async def test_products_bulk_fails_hostile_items_alone(client: httpx.AsyncClient, key: Key) -> None:
    items = [{"ean": EAN, "name": "ok"}, {"ean": "3760000000018", "name": "x", "stock": 2**40}]
    response = await client.post(
        "/api/v1/products/bulk", json={"products": items}, headers=key.headers
    )
    assert response.status_code == 200
    assert_clean(response)
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "error"]
    assert results[1]["errors"][0]["field"] == "stock"
    assert await product_count(client, key) == 1


async def test_windev_batches_fail_hostile_items_alone(client: httpx.AsyncClient, key: Key) -> None:
    sync = [
        {"reference": "R1", "name": "ok", "ean": EAN},
        {"reference": "R2", "name": "x", "stock": INT32_OVER},
        {"reference": NUL, "name": "x"},
    ]
    response = await client.post("/api/v1/windev/products/sync", json=sync, headers=key.headers)
    assert response.status_code == 200
    assert_clean(response)
    assert [i["status"] for i in response.json()["data"]] == ["created", "error", "error"]
    for path, item in [
        ("/api/v1/windev/stock/update", {"ean": EAN, "stock": INT32_OVER}),
        ("/api/v1/windev/stock/update", {"ean": EAN, "stock": 1, "supplier_code": NUL}),
        ("/api/v1/windev/prices/update", {"ean": NUL, "price_ttc": 1}),
    ]:
        response = await client.post(path, json=[item], headers=key.headers)
        assert response.status_code == 200
        assert_clean(response)
        assert response.json()["data"][0]["status"] == "error"
    listed = await client.get("/api/v1/windev/products?active_only=false", headers=key.headers)
    assert [(p["reference"], p["stock"]) for p in listed.json()["data"]] == [("R1", 0)]


AUTOMATION = {
    "name": "Tarifs",
    "schedule": "0 2 * * *",
    "file_source": {"type": "https", "url": "https://files.example.com/tarifs.csv"},
}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule": "0 0 30 2 *"}, "schedule"),
        ({"schedule": "0 0 31 4 *"}, "schedule"),
        ({"name": NUL}, "name"),
        ({"mapping": {"EAN": NUL}}, "mapping.EAN"),
        ({"mapping": {f"c{i}": "name" for i in range(7000)}}, "mapping"),
    ],
)
async def test_automations_refuse_hostile_values(
    client: httpx.AsyncClient, key: Key, changes: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/v1/imports/automations", json=AUTOMATION | changes, headers=key.headers
    )
    assert response.status_code == 422
    assert_clean(response)
    assert plain_fields(response) == [field]
    listed = await client.get("/api/v1/imports/automations", headers=key.headers)
    assert listed.json()["meta"]["total"] == 0


async def test_connector_options_and_credentials_are_bounded(
    client: httpx.AsyncClient, key: Key, loopback_allowed: None
) -> None:
    base = {"name": "Boutique", "base_url": "http://127.0.0.1:9"}
    for changes, field in [
        ({"options": {"x": "y" * 5_000_000}}, "options"),
        ({"credentials": {"token": "t" * 10_001}}, "credentials.token"),
        ({"name": NUL}, "name"),
        ({"options": {"k": NUL}}, "options.k"),
    ]:
        response = await client.post(
            "/api/v1/woocommerce/", json=base | changes, headers=key.headers
        )
        assert response.status_code == 422, response.text
        assert_clean(response)
        assert plain_fields(response) == [field]
    listed = await client.get("/api/v1/woocommerce/", headers=key.headers)
    assert listed.json()["meta"]["total"] == 0


async def test_webhook_endpoint_values_are_bounded(
    client: httpx.AsyncClient, key: Key, loopback_allowed: None
) -> None:
    for body, field in [
        ({"url": "http://127.0.0.1:9/x", "events": ["*"], "description": NUL}, "description"),
        ({"url": "http://127.0.0.1:9/\x00", "events": ["*"]}, "url"),
    ]:
        response = await client.post("/api/v1/webhooks", json=body, headers=key.headers)
        assert response.status_code == 422
        assert_clean(response)
        assert plain_fields(response) == [field]


GRAPHQL_CASES = [
    (
        'mutation { createCategory(input: {name: "a\\u0000b"}) { category { id } errors { field code } } }',
        "createCategory",
        "name",
    ),
    (
        'mutation { createSupplier(input: {code: "C1", name: "a\\u0000b"}) { supplier { id } errors { field code } } }',
        "createSupplier",
        "name",
    ),
    (
        'mutation { createCategory(input: {name: "%s"}) { category { id } errors { field code } } }'
        % ("x" * 300),
        "createCategory",
        "name",
    ),
    (
        'mutation { upsertProduct(input: {ean: "3760000000001", name: "a\\u0000b"}) { product { id } errors { field code } } }',
        "upsertProduct",
        "name",
    ),
    (
        'mutation { upsertProduct(input: {ean: "3760000000001", name: "x", description: "%s"}) { product { id } errors { field code } } }'
        % ("x" * 50_001),
        "upsertProduct",
        "description",
    ),
    (
        'mutation { createAutomation(input: {name: "a", schedule: "0 0 30 2 *", fileSource: {type: HTTPS, url: "https://files.example.com/f.csv"}}) { automation { id } errors { field code } } }',
        "createAutomation",
        "schedule",
    ),
]


@pytest.mark.parametrize(("query", "mutation", "field"), GRAPHQL_CASES)
async def test_graphql_mutations_refuse_hostile_values_as_typed_errors(
    client: httpx.AsyncClient, key: Key, query: str, mutation: str, field: str
) -> None:
    body = await gql(client, query, key)
    assert "errors" not in body, body
    assert body["data"][mutation]["errors"][0]["field"] == field
    assert not INTERNALS.search(str(body))
    assert await product_count(client, key) == 0


async def test_graphql_lookups_and_filters_refuse_nul(client: httpx.AsyncClient, key: Key) -> None:
    for query in [
        'query { product(ean: "a\\u0000b") { id } }',
        'query { products(filter: {search: "a\\u0000b"}) { totalCount } }',
        'query { connectors(platform: "a\\u0000b") { totalCount } }',
    ]:
        body = await gql(client, query, key)
        assert body["data"] is None or not any(body["data"].values()), body
        assert "NUL" in body["errors"][0]["message"], body
        assert not INTERNALS.search(str(body))


async def test_rotating_a_secret_for_1e308_hours_is_a_typed_error(
    client: httpx.AsyncClient, key: Key, loopback_allowed: None
) -> None:
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/x", "events": ["*"]},
        headers=key.headers,
    )
    endpoint_id = created.json()["id"]
    body = await gql(
        client,
        "mutation ($id: ID!) { rotateWebhookSecret(id: $id, expiresInHours: 1e308) { secret errors { field } } }",
        key,
        id=endpoint_id,
    )
    assert body["data"]["rotateWebhookSecret"] == {
        "secret": None,
        "errors": [{"field": "expires_in_hours"}],
    }
    response = await client.post(
        f"/api/v1/webhooks/{endpoint_id}/rotate-secret",
        json={"expires_in_hours": 1e308},
        headers=key.headers,
    )
    assert response.status_code == 422
    assert plain_fields(response) == ["expires_in_hours"]


async def test_graphql_datetimes_without_a_utc_equivalent_are_refused(
    client: httpx.AsyncClient, key: Key
) -> None:
    for query, field in [
        ('{ productsDelta(since: "0001-01-01T00:00:00+01:00") { totalCount } }', "since"),
        (
            '{ products(filter: {updatedSince: "0001-01-01T00:00:00+01:00"}) { totalCount } }',
            "updated_since",
        ),
    ]:
        body = await gql(client, query, key)
        assert body["errors"][0]["extensions"]["field"] == field, body
        assert "hors des limites" in body["errors"][0]["message"]
        assert not INTERNALS.search(str(body))
