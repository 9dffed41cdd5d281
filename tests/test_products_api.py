"""The Products API (/api/v1/products), route by route, against spec/products-api.txt;
and the GraphQL batch mutations createProducts / updateProducts on the same writer."""

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from jobs.demo import ean13
from models import Event, Product, Supplier
from pim.runtime import Runtime
from tests.conftest import Key, MakeKey, gql

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
BASE = "/api/v1/products"
SPEC_PRODUCT = {
    "ean": "3760000000001",
    "name": "Produit exemple",
    "price": 29.99,
    "cost_price": 18.00,
    "weight": 0.5,
}
SPEC_FIELDS = {
    "id", "ean", "name", "barcode", "price", "cost_price", "weight", "is_active",
    "created_at", "updated_at",
}  # fmt: skip
META_FIELDS = {"total", "page", "per_page", "total_pages", "has_next", "has_previous"}
ERROR_FIELDS = {"detail", "code", "field", "errors"}
EAN8 = "96385074"
MISSING = str(uuid.UUID(int=1))


async def create(client: httpx.AsyncClient, key: Key, **fields: Any) -> dict[str, Any]:
    response = await client.post(BASE, json=fields, headers=key.bearer)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def listing(client: httpx.AsyncClient, key: Key, **params: Any) -> dict[str, Any]:
    response = await client.get(BASE, params=params, headers=key.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def footprint(runtime: Runtime, key: Key) -> dict[str, int]:
    """What a write leaves behind in the account: product rows (deleted ones too),
    outbox events by type, and suppliers."""
    async with runtime.db.transaction() as session:
        products = await session.scalar(
            select(func.count()).select_from(Product).where(Product.account_id == key.account_id)
        )
        suppliers = await session.scalar(
            select(func.count()).select_from(Supplier).where(Supplier.account_id == key.account_id)
        )
        events = await session.execute(
            select(Event.type, func.count())
            .where(Event.account_id == key.account_id)
            .group_by(Event.type)
        )
        return {
            "products": products or 0,
            "suppliers": suppliers or 0,
            **{kind: count for kind, count in events},
        }


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body: dict = response.json()
    assert set(body) == ERROR_FIELDS
    assert body["detail"] and body["code"]
    if field is not None:
        assert body["field"] == field, body
    return body


# --- GET /products ---------------------------------------------------------------------


async def test_list_matches_the_spec_example(client: httpx.AsyncClient, key: Key) -> None:
    created = await create(client, key, **SPEC_PRODUCT)
    await create(client, key, ean=ean13(2), name="Inactif", is_active=False)
    body = await listing(client, key, skip=0, limit=50, is_active="true")
    assert set(body) == {"items", "meta"}
    assert body["meta"] == {
        "total": 1, "page": 1, "per_page": 50, "total_pages": 1,
        "has_next": False, "has_previous": False,
    }  # fmt: skip
    (item,) = body["items"]
    assert set(item) >= SPEC_FIELDS
    assert item == created
    assert (item["ean"], item["name"], item["price"], item["cost_price"], item["weight"]) == (
        "3760000000001", "Produit exemple", 29.99, 18.0, 0.5,
    )  # fmt: skip
    assert item["is_active"] is True
    assert ISO_Z.match(item["created_at"]) and ISO_Z.match(item["updated_at"])


async def test_list_pages_by_skip_and_limit(client: httpx.AsyncClient, key: Key) -> None:
    for n in range(1, 6):
        await create(client, key, ean=ean13(n), name=f"P{n}")
    first = await listing(client, key, skip=0, limit=2, sort_order="asc")
    assert [p["name"] for p in first["items"]] == ["P1", "P2"]
    assert first["meta"] == {
        "total": 5, "page": 1, "per_page": 2, "total_pages": 3,
        "has_next": True, "has_previous": False,
    }  # fmt: skip
    middle = await listing(client, key, skip=2, limit=2, sort_order="asc")
    assert [p["name"] for p in middle["items"]] == ["P3", "P4"]
    assert (middle["meta"]["page"], middle["meta"]["has_next"], middle["meta"]["has_previous"]) == (
        2, True, True,
    )  # fmt: skip
    last = await listing(client, key, skip=4, limit=2, sort_order="asc")
    assert [p["name"] for p in last["items"]] == ["P5"]
    assert (last["meta"]["page"], last["meta"]["has_next"]) == (3, False)
    newest_first = await listing(client, key, limit=2)
    assert [p["name"] for p in newest_first["items"]] == ["P5", "P4"]


async def test_list_searches_name_ean_and_sku(client: httpx.AsyncClient, key: Key) -> None:
    await create(client, key, ean=ean13(1), name="Support TV mural", reference="KIM-100")
    await create(client, key, ean=ean13(2), name="Câble HDMI", reference="HDM-2")
    await create(client, key, ean=EAN8, name="Pile AA")
    for search, names in (
        ("mural", ["Support TV mural"]),
        (ean13(2)[-6:], ["Câble HDMI"]),
        ("kim-1", ["Support TV mural"]),
        (EAN8, ["Pile AA"]),
        ("rien", []),
    ):
        body = await listing(client, key, search=search)
        assert [p["name"] for p in body["items"]] == names, search
        assert body["meta"]["total"] == len(names)


async def test_list_filters_by_status_and_supplier_and_sorts(
    client: httpx.AsyncClient, key: Key
) -> None:
    bulk = await client.post(
        f"{BASE}/bulk",
        json={
            "products": [
                {"ean": ean13(1), "name": "Bravo", "price": 20},
                {"ean": ean13(2), "name": "Alpha", "price": 30},
            ],
            "supplier_code": "KIMEX",
        },
        headers=key.bearer,
    )
    assert bulk.json()["created"] == 2
    await create(client, key, ean=ean13(3), name="Charlie", price=10, is_active=False)
    supplier_id = (await listing(client, key, search="Bravo"))["items"][0]["supplier_id"]
    assert supplier_id
    by_supplier = await listing(client, key, supplier_id=supplier_id, sort_by="name")
    assert [p["name"] for p in by_supplier["items"]] == ["Bravo", "Alpha"]
    by_name = await listing(client, key, supplier_id=supplier_id, sort_by="name", sort_order="asc")
    assert [p["name"] for p in by_name["items"]] == ["Alpha", "Bravo"]
    by_price = await listing(client, key, sort_by="price", sort_order="asc")
    assert [p["price"] for p in by_price["items"]] == [10, 20, 30]
    inactive = await listing(client, key, is_active="false")
    assert [p["name"] for p in inactive["items"]] == ["Charlie"]
    assert (await listing(client, key, supplier_id=MISSING))["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=501", "limit"),
        ("limit=0", "limit"),
        ("limit=dix", "limit"),
        ("skip=-1", "skip"),
        ("sort_by=ean", "sort_by"),
        ("sort_order=up", "sort_order"),
        ("supplier_id=KIMEX", "supplier_id"),
        ("is_active=peut-etre", "is_active"),
    ],
)
async def test_list_arguments_are_validated(
    client: httpx.AsyncClient, key: Key, query: str, field: str
) -> None:
    body = assert_error(await client.get(f"{BASE}?{query}", headers=key.bearer), 422, field)
    assert body["errors"][0]["field"] == field and body["errors"][0]["message"]


# --- GET /products/{id} ----------------------------------------------------------------


async def test_get_matches_the_spec_example(client: httpx.AsyncClient, key: Key) -> None:
    created = await create(client, key, **SPEC_PRODUCT)
    response = await client.get(f"{BASE}/{created['id']}", headers=key.bearer)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= SPEC_FIELDS
    assert body["id"] == created["id"]
    assert body["barcode"] == "3760000000001"
    assert (body["name"], body["price"], body["cost_price"], body["weight"]) == (
        "Produit exemple", 29.99, 18.0, 0.5,
    )  # fmt: skip


async def test_get_unknown_or_malformed_id(client: httpx.AsyncClient, key: Key) -> None:
    unknown = assert_error(await client.get(f"{BASE}/{MISSING}", headers=key.bearer), 404, "id")
    assert unknown["code"] == "not_found" and MISSING in unknown["detail"]
    malformed = assert_error(await client.get(f"{BASE}/pas-un-uuid", headers=key.bearer), 422)
    assert malformed["errors"] == [
        {"field": "id", "message": "UUID invalide", "code": "uuid_parsing"}
    ]


# --- POST /products --------------------------------------------------------------------


async def test_create_matches_the_spec_example(client: httpx.AsyncClient, key: Key) -> None:
    response = await client.post(BASE, json=SPEC_PRODUCT, headers=key.bearer)
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= SPEC_FIELDS
    uuid.UUID(body["id"])
    assert {k: body[k] for k in SPEC_PRODUCT} == SPEC_PRODUCT
    assert body["is_active"] is True
    assert body["barcode"] == SPEC_PRODUCT["ean"]
    assert body["created_at"] == body["updated_at"] and ISO_Z.match(body["created_at"])
    # The spec's EAN has a wrong check digit: accepted, and flagged.
    assert body["ean_checksum_valid"] is False


async def test_create_keeps_a_given_barcode_and_takes_ean8(
    client: httpx.AsyncClient, key: Key
) -> None:
    body = await create(client, key, ean=EAN8, name="Pile", barcode="PILE-AA", is_active=False)
    assert (body["ean"], body["barcode"], body["is_active"]) == (EAN8, "PILE-AA", False)
    assert body["ean_checksum_valid"] is True


async def test_create_duplicate_ean_is_409(client: httpx.AsyncClient, key: Key) -> None:
    await create(client, key, **SPEC_PRODUCT)
    body = assert_error(
        await client.post(BASE, json={**SPEC_PRODUCT, "name": "Autre"}, headers=key.bearer),
        409,
        "ean",
    )
    assert body["code"] == "conflict" and "3760000000001" in body["detail"]
    assert (await listing(client, key))["items"][0]["name"] == "Produit exemple"


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        (
            {"ean": "036000291452", "name": "X"},
            "ean",
            "format invalide (8 ou 13 chiffres attendus)",
        ),
        (
            {"ean": "10012345678902", "name": "X"},
            "ean",
            "format invalide (8 ou 13 chiffres attendus)",
        ),
        (
            {"ean": "376ABC0000001", "name": "X"},
            "ean",
            "format invalide (8 ou 13 chiffres attendus)",
        ),
        ({"name": "X"}, "ean", "champ obligatoire"),
        ({"ean": "4006381333931"}, "name", "obligatoire pour créer un produit"),
        ({"ean": "4006381333931", "name": ""}, "name", "ne peut pas être vide"),
        ({"ean": "4006381333931", "name": "x" * 256}, "name", "trop long (au plus 255 caractères)"),
        (
            {"ean": "4006381333931", "name": "X", "price": -0.01},
            "price",
            "doit être supérieur ou égal à 0",
        ),
        (
            {"ean": "4006381333931", "name": "X", "price": 1_000_000},
            "price",
            "doit être inférieur ou égal à 999999.99",
        ),
        ({"ean": "4006381333931", "name": "X", "price": "cher"}, "price", "nombre attendu"),
        (
            {"ean": "4006381333931", "name": "X", "cost_price": -1},
            "cost_price",
            "doit être supérieur ou égal à 0",
        ),
        (
            {"ean": "4006381333931", "name": "X", "weight": 100_000},
            "weight",
            "doit être inférieur ou égal à 99999.99",
        ),
        (
            {"ean": "4006381333931", "name": "X", "is_active": "peut-être"},
            "is_active",
            "booléen attendu (true ou false)",
        ),
    ],
)
async def test_create_validation_errors_are_422_and_write_nothing(
    client: httpx.AsyncClient, key: Key, payload: dict, field: str, message: str
) -> None:
    body = assert_error(await client.post(BASE, json=payload, headers=key.bearer), 422, field)
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["message"] == message
    assert (await listing(client, key))["meta"]["total"] == 0


async def test_malformed_json_is_400_and_a_non_object_is_422(
    client: httpx.AsyncClient, key: Key
) -> None:
    headers = {**key.bearer, "Content-Type": "application/json"}
    for method, path in (("POST", BASE), ("POST", f"{BASE}/bulk"), ("PATCH", f"{BASE}/bulk")):
        bad = await client.request(method, path, content=b'{"ean": ', headers=headers)
        body = assert_error(bad, 400, "body")
        assert body["code"] == "json_invalid" and body["detail"].startswith("body : JSON invalide")
        wrong = await client.request(method, path, json=[SPEC_PRODUCT], headers=key.bearer)
        assert assert_error(wrong, 422, "body")["errors"][0]["message"] == "objet JSON attendu"
    assert (await listing(client, key))["meta"]["total"] == 0


async def test_concurrent_creates_of_one_ean_make_one_product_and_409s(
    client: httpx.AsyncClient, key: Key
) -> None:
    responses = await asyncio.gather(
        *(client.post(BASE, json=SPEC_PRODUCT, headers=key.bearer) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    for refused in (r for r in responses if r.status_code == 409):
        assert assert_error(refused, 409, "ean")["code"] == "conflict"
    assert (await listing(client, key))["meta"]["total"] == 1


# --- PATCH /products/{id} --------------------------------------------------------------


async def test_patch_matches_the_spec_example(client: httpx.AsyncClient, key: Key) -> None:
    created = await create(client, key, **SPEC_PRODUCT, is_active=False)
    response = await client.patch(
        f"{BASE}/{created['id']}", json={"price": 24.99, "is_active": True}, headers=key.bearer
    )
    assert response.status_code == 200
    body = response.json()
    assert {"id", "ean", "name", "price", "is_active", "updated_at"} <= set(body)
    assert (body["id"], body["price"], body["is_active"]) == (created["id"], 24.99, True)
    assert (body["name"], body["cost_price"], body["weight"]) == ("Produit exemple", 18.0, 0.5)
    assert body["updated_at"] > created["updated_at"]
    assert body["created_at"] == created["created_at"]


async def test_patch_errors(client: httpx.AsyncClient, key: Key) -> None:
    created = await create(client, key, **SPEC_PRODUCT)
    other = await create(client, key, ean=ean13(7), name="Autre")
    path = f"{BASE}/{created['id']}"
    assert_error(
        await client.patch(f"{BASE}/{MISSING}", json={"price": 1}, headers=key.bearer), 404, "id"
    )
    assert_error(await client.patch(path, json={"price": -5}, headers=key.bearer), 422, "price")
    assert_error(await client.patch(path, json={"name": ""}, headers=key.bearer), 422, "name")
    assert_error(
        await client.patch(path, json={"ean": "036000291452"}, headers=key.bearer), 422, "ean"
    )
    taken = await client.patch(path, json={"ean": other["ean"]}, headers=key.bearer)
    assert assert_error(taken, 409, "ean")["code"] == "conflict"
    unchanged = (await client.get(path, headers=key.bearer)).json()
    assert unchanged == created


# --- DELETE /products/{id} -------------------------------------------------------------


async def test_delete_is_soft_then_404_and_a_delta_tombstone(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    created = await create(client, key, **SPEC_PRODUCT)
    path = f"{BASE}/{created['id']}"
    response = await client.delete(path, headers=key.bearer)
    assert response.status_code == 200 and response.json() == {}
    assert_error(await client.get(path, headers=key.bearer), 404, "id")
    assert_error(await client.patch(path, json={"price": 1}, headers=key.bearer), 404, "id")
    assert_error(await client.delete(path, headers=key.bearer), 404, "id")
    assert (await listing(client, key))["meta"]["total"] == 0
    async with runtime.db.transaction() as session:
        row = await session.scalar(select(Product).where(Product.id == uuid.UUID(created["id"])))
    assert row is not None and row.deleted_at is not None and row.ean == SPEC_PRODUCT["ean"]
    assert (await footprint(runtime, key))["product.deleted"] == 1
    delta = await client.get(
        "/api/v1/ext/products/delta", params={"since": created["created_at"]}, headers=key.headers
    )
    (tombstone,) = [p for p in delta.json()["data"] if p["id"] == created["id"]]
    assert tombstone["status"] == "deleted" and ISO_Z.match(tombstone["deleted_at"])


async def test_creating_a_deleted_ean_again_restores_it(
    client: httpx.AsyncClient, key: Key
) -> None:
    created = await create(client, key, **SPEC_PRODUCT)
    await client.delete(f"{BASE}/{created['id']}", headers=key.bearer)
    again = await create(client, key, ean=SPEC_PRODUCT["ean"], name="Revenu")
    assert (again["id"], again["name"]) == (created["id"], "Revenu")
    # It starts afresh: what the first life had and the new creation does not give is gone.
    assert (again["price"], again["cost_price"], again["weight"]) == (None, None, None)


# --- POST /products/bulk ---------------------------------------------------------------


SPEC_BULK = {
    "products": [
        {"ean": "3760000000001", "name": "Produit A", "price": 10.00},
        {"ean": "3760000000002", "name": "Produit B", "price": 20.00},
    ],
    "skip_duplicates": True,
}


async def test_bulk_create_matches_the_spec_example(client: httpx.AsyncClient, key: Key) -> None:
    response = await client.post(f"{BASE}/bulk", json=SPEC_BULK, headers=key.bearer)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("created", "skipped", "errors")} == {
        "created": 2, "skipped": 0, "errors": 0,
    }  # fmt: skip
    assert [(r["index"], r["ean"], r["status"]) for r in body["results"]] == [
        (0, "3760000000001", "created"),
        (1, "3760000000002", "created"),
    ]
    assert all(uuid.UUID(r["id"]) and r["errors"] == [] for r in body["results"])
    items = (await listing(client, key, sort_order="asc"))["items"]
    assert [(p["name"], p["price"]) for p in items] == [("Produit A", 10), ("Produit B", 20)]
    assert [p["id"] for p in items] == [r["id"] for r in body["results"]]


async def test_bulk_create_duplicates_are_errors_unless_skipped(
    client: httpx.AsyncClient, key: Key
) -> None:
    existing = await create(client, key, ean="3760000000001", name="Déjà là")
    refused = (
        await client.post(
            f"{BASE}/bulk", json={**SPEC_BULK, "skip_duplicates": False}, headers=key.bearer
        )
    ).json()
    assert (refused["created"], refused["skipped"], refused["errors"]) == (1, 0, 1)
    duplicate, good = refused["results"]
    assert (duplicate["status"], duplicate["id"]) == ("error", existing["id"])
    assert duplicate["errors"] == [
        {"field": "ean", "message": "l'EAN 3760000000001 existe déjà", "code": "conflict"}
    ]
    assert good["status"] == "created"
    skipped = (
        await client.post(
            f"{BASE}/bulk",
            json={"products": [*SPEC_BULK["products"], {"ean": ean13(3), "name": "C"}],
                  "skip_duplicates": True},
            headers=key.bearer,
        )
    ).json()  # fmt: skip
    assert (skipped["created"], skipped["skipped"], skipped["errors"]) == (1, 2, 0)
    assert [r["status"] for r in skipped["results"]] == ["skipped", "skipped", "created"]
    assert (await listing(client, key, search="Déjà"))["meta"]["total"] == 1


async def test_bulk_create_applies_the_supplier_code_to_all(
    client: httpx.AsyncClient, key: Key
) -> None:
    body = {**SPEC_BULK, "supplier_code": "KIMEX"}
    assert (await client.post(f"{BASE}/bulk", json=body, headers=key.bearer)).json()["created"] == 2
    items = (await listing(client, key))["items"]
    assert {p["supplier_code"] for p in items} == {"KIMEX"}
    assert len({p["supplier_id"] for p in items}) == 1 and items[0]["supplier_id"]


MIXED_CREATE = {
    "products": [
        {"ean": ean13(1), "name": "Nouveau"},
        {"ean": ean13(2), "name": "Existant"},
        {"ean": "036000291452", "name": "UPC-A refusé ici"},
        {"ean": ean13(4)},
        {"ean": ean13(1), "name": "En double"},
        "pas un objet",
        {"ean": ean13(5), "name": "Prix", "price": 1_000_000},
    ],
    "supplier_code": "NEWSUP",
}


def _same_but_new_ids(dry: dict, real: dict) -> None:
    assert dry["dry_run"] is True and real["dry_run"] is False
    dry_rest = {k: v for k, v in dry.items() if k not in ("results", "dry_run")}
    real_rest = {k: v for k, v in real.items() if k not in ("results", "dry_run")}
    assert dry_rest == real_rest
    for d, r in zip(dry["results"], real["results"], strict=True):
        if r["status"] == "created":
            assert d["id"] is None and r["id"] is not None
            d, r = {**d, "id": None}, {**r, "id": None}
        assert d == r


async def test_bulk_create_dry_run_answers_like_the_real_call_and_writes_nothing(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    existing = await create(client, key, ean=ean13(2), name="Existant")
    before = await footprint(runtime, key)
    dry = await client.post(
        f"{BASE}/bulk", json={**MIXED_CREATE, "dry_run": True}, headers=key.bearer
    )
    assert dry.status_code == 200
    assert (await listing(client, key))["items"] == [existing]
    assert await footprint(runtime, key) == before
    real = await client.post(f"{BASE}/bulk", json=MIXED_CREATE, headers=key.bearer)
    assert await footprint(runtime, key) == {
        "products": 2, "suppliers": 1, "product.created": 2,
    }  # fmt: skip
    _same_but_new_ids(dry.json(), real.json())
    body = real.json()
    assert (body["created"], body["skipped"], body["errors"]) == (1, 0, 6)
    assert [(r["status"], [e["field"] for e in r["errors"]]) for r in body["results"]] == [
        ("created", []),
        ("error", ["ean"]),
        ("error", ["ean"]),
        ("error", ["name"]),
        ("error", ["ean"]),
        ("error", [""]),
        ("error", ["price"]),
    ]
    assert [e["code"] for e in body["results"][4]["errors"]] == ["duplicate"]
    assert (await listing(client, key))["meta"]["total"] == 2


# --- PATCH /products/bulk --------------------------------------------------------------


SPEC_BULK_UPDATE = {
    "products": [
        {"ean": "3760000000001", "price": 9.99},
        {"ean": "3760000000002", "is_active": False},
    ]
}


async def test_bulk_update_matches_the_spec_example(client: httpx.AsyncClient, key: Key) -> None:
    await client.post(f"{BASE}/bulk", json=SPEC_BULK, headers=key.bearer)
    response = await client.patch(f"{BASE}/bulk", json=SPEC_BULK_UPDATE, headers=key.bearer)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("updated", "skipped", "errors")} == {
        "updated": 2, "skipped": 0, "errors": 0,
    }  # fmt: skip
    assert [(r["ean"], r["status"], r["changed_fields"]) for r in body["results"]] == [
        ("3760000000001", "updated", ["price"]),
        ("3760000000002", "updated", ["status"]),
    ]
    items = (await listing(client, key, sort_order="asc"))["items"]
    assert [(p["price"], p["is_active"]) for p in items] == [(9.99, True), (20, False)]
    again = (await client.patch(f"{BASE}/bulk", json=SPEC_BULK_UPDATE, headers=key.bearer)).json()
    assert again["updated"] == 2
    assert [r["changed_fields"] for r in again["results"]] == [[], []]


async def test_bulk_update_unknown_eans_are_errors_unless_skipped(
    client: httpx.AsyncClient, key: Key
) -> None:
    await create(client, key, ean="3760000000001", name="A", price=1)
    strict = (await client.patch(f"{BASE}/bulk", json=SPEC_BULK_UPDATE, headers=key.bearer)).json()
    assert (strict["updated"], strict["skipped"], strict["errors"]) == (1, 0, 1)
    assert strict["results"][1]["status"] == "error"
    assert [e["code"] for e in strict["results"][1]["errors"]] == ["not_found"]
    lenient = (
        await client.patch(
            f"{BASE}/bulk", json={**SPEC_BULK_UPDATE, "skip_not_found": True}, headers=key.bearer
        )
    ).json()
    assert (lenient["updated"], lenient["skipped"], lenient["errors"]) == (1, 1, 0)
    assert [r["status"] for r in lenient["results"]] == ["updated", "skipped"]
    assert (await listing(client, key))["items"][0]["price"] == 9.99


async def test_bulk_update_dry_run_answers_like_the_real_call_and_writes_nothing(
    client: httpx.AsyncClient, key: Key, runtime: Runtime
) -> None:
    await create(client, key, ean=ean13(1), name="A", price=1)
    await create(client, key, ean=ean13(2), name="B", price=2)
    before = (await listing(client, key))["items"]
    written = await footprint(runtime, key)
    payload = {
        "products": [
            {"ean": ean13(1), "price": 5, "name": "A2"},
            {"ean": ean13(2), "price": 2},
            {"ean": ean13(3), "price": 3},
            {"ean": ean13(1), "price": 6},
            {"price": 4},
            {"ean": ean13(2), "weight": -1},
        ],
        "skip_not_found": True,
    }
    dry = await client.patch(f"{BASE}/bulk", json={**payload, "dry_run": True}, headers=key.bearer)
    assert dry.status_code == 200
    assert (await listing(client, key))["items"] == before
    assert await footprint(runtime, key) == written
    real = await client.patch(f"{BASE}/bulk", json=payload, headers=key.bearer)
    assert await footprint(runtime, key) == {**written, "product.updated": 1}
    _same_but_new_ids(dry.json(), real.json())
    body = real.json()
    assert (body["updated"], body["skipped"], body["errors"]) == (2, 1, 3)
    assert [r["status"] for r in body["results"]] == [
        "updated", "updated", "skipped", "error", "error", "error",
    ]  # fmt: skip
    assert body["results"][4]["errors"][0] == {
        "field": "ean",
        "message": "champ obligatoire",
        "code": "missing",
    }
    assert (await listing(client, key, search="A2"))["items"][0]["price"] == 5


# --- both bulk routes ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_bulk_over_1000_items_is_refused_whole(
    client: httpx.AsyncClient, key: Key, method: str
) -> None:
    items = [{"ean": ean13(n), "name": f"P{n}", "price": 1} for n in range(1001)]
    response = await client.request(
        method, f"{BASE}/bulk", json={"products": items}, headers=key.bearer
    )
    body = assert_error(response, 422, "products")
    assert body["errors"] == [
        {
            "field": "products",
            "message": "1001 éléments : au plus 1000 par appel",
            "code": "too_many",
        }
    ]
    assert (await listing(client, key))["meta"]["total"] == 0


async def test_bulk_of_1000_items_is_accepted(client: httpx.AsyncClient, key: Key) -> None:
    items = [{"ean": ean13(n), "name": f"P{n}"} for n in range(1000)]
    body = (await client.post(f"{BASE}/bulk", json={"products": items}, headers=key.bearer)).json()
    assert body["created"] == 1000 and len(body["results"]) == 1000
    updates = [{"ean": ean13(n), "price": 2.5} for n in range(1000)]
    patched = (
        await client.patch(f"{BASE}/bulk", json={"products": updates}, headers=key.bearer)
    ).json()
    assert patched["updated"] == 1000


@pytest.mark.parametrize(
    ("method", "payload", "field", "message"),
    [
        ("POST", {}, "products", "champ obligatoire"),
        ("POST", {"products": {"ean": EAN8}}, "products", "tableau JSON attendu"),
        (
            "POST",
            {"products": [], "skip_duplicates": "oui ou non"},
            "skip_duplicates",
            "booléen attendu (true ou false)",
        ),
        (
            "POST",
            {"products": [], "dry_run": "peut-être"},
            "dry_run",
            "booléen attendu (true ou false)",
        ),
        ("POST", {"products": [], "supplier_code": ""}, "supplier_code", "ne peut pas être vide"),
        ("PATCH", {"products": "tout"}, "products", "tableau JSON attendu"),
        (
            "PATCH",
            {"products": [], "skip_not_found": 3},
            "skip_not_found",
            "booléen attendu (true ou false)",
        ),
    ],
)
async def test_bulk_envelope_is_validated(
    client: httpx.AsyncClient, key: Key, method: str, payload: dict, field: str, message: str
) -> None:
    response = await client.request(method, f"{BASE}/bulk", json=payload, headers=key.bearer)
    body = assert_error(response, 422, field)
    assert body["errors"][0]["message"] == message


async def test_bulk_is_never_taken_for_a_product_id(client: httpx.AsyncClient, key: Key) -> None:
    created = await create(client, key, **SPEC_PRODUCT)
    patched = await client.patch(f"{BASE}/bulk", json=SPEC_BULK_UPDATE, headers=key.bearer)
    assert patched.status_code == 200 and patched.json()["updated"] == 1
    by_id = await client.patch(f"{BASE}/{created['id']}", json={"price": 7}, headers=key.bearer)
    assert by_id.status_code == 200 and by_id.json()["price"] == 7
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"{BASE}/bulk", headers=key.bearer)
        assert assert_error(response, 422, "id")["errors"][0]["code"] == "uuid_parsing"
    assert (await client.put(f"{BASE}/bulk", json={}, headers=key.bearer)).status_code == 405
    assert_error(await client.get(f"{BASE}/{created['id']}/nope", headers=key.bearer), 404)


# --- auth, scopes, tenancy -------------------------------------------------------------


ROUTES = [
    ("GET", "", None, "products:read", 200),
    ("GET", "/{id}", None, "products:read", 200),
    ("POST", "", {"ean": ean13(50), "name": "Nouveau"}, "products:write", 201),
    ("PATCH", "/{id}", {"price": 3}, "products:write", 200),
    ("DELETE", "/{id}", None, "products:write", 200),
    ("POST", "/bulk", {"products": [{"ean": ean13(51), "name": "N"}]}, "products:write", 200),
    ("PATCH", "/bulk", {"products": [{"ean": ean13(1), "price": 4}]}, "products:write", 200),
]


@pytest.mark.parametrize(("method", "path", "body", "scope", "status"), ROUTES)
async def test_every_route_checks_key_and_scope(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    method: str,
    path: str,
    body: dict | None,
    scope: str,
    status: int,
) -> None:
    admin = await make_key()
    product = await create(client, admin, ean=ean13(1), name="Cible")
    url = BASE + path.format(id=product["id"])
    for headers in ({}, {"Authorization": "Bearer pm_live_nope"}, {"X-API-Key": "pm_live_nope"}):
        response = await client.request(method, url, json=body, headers=headers)
        assert assert_error(response, 401)["code"] == "unauthenticated"
    # Every other scope, the other surfaces' product scopes included, is not enough.
    from pim.auth import SCOPES

    others = await make_key(sorted(set(SCOPES) - {scope}), account=admin.account)
    refused = assert_error(await client.request(method, url, json=body, headers=others.bearer), 403)
    assert refused["code"] == "forbidden" and scope in refused["detail"]
    only = await make_key([scope], account=admin.account)
    allowed = await client.request(method, url, json=body, headers=only.bearer)
    assert allowed.status_code == status, allowed.text
    # X-API-Key is accepted as well as Bearer.
    if method == "GET":
        assert (await client.get(url, headers=only.headers)).status_code == 200


async def test_rate_limit_is_a_plain_429(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key(["products:read"], rate_limit=1)
    assert (await client.get(BASE, headers=key.bearer)).status_code == 200
    limited = await client.get(BASE, headers=key.bearer)
    assert assert_error(limited, 429)["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1


async def test_accounts_cannot_see_or_touch_each_other(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    alice, bob = await make_key(), await make_key()
    alices = await create(client, alice, **SPEC_PRODUCT)
    path = f"{BASE}/{alices['id']}"
    assert (await listing(client, bob))["meta"]["total"] == 0
    assert (await listing(client, bob, search="Produit"))["items"] == []
    assert_error(await client.get(path, headers=bob.bearer), 404, "id")
    assert_error(await client.patch(path, json={"price": 1}, headers=bob.bearer), 404, "id")
    assert_error(await client.delete(path, headers=bob.bearer), 404, "id")
    patched = (await client.patch(f"{BASE}/bulk", json=SPEC_BULK_UPDATE, headers=bob.bearer)).json()
    assert (patched["updated"], patched["errors"]) == (0, 2)
    # Bob creating the same EAN makes his own product and leaves Alice's alone.
    bobs = await create(client, bob, **{**SPEC_PRODUCT, "name": "À Bob"})
    assert bobs["id"] != alices["id"]
    assert (await client.get(path, headers=alice.bearer)).json() == alices
    assert_error(await client.get(f"{BASE}/{bobs['id']}", headers=alice.bearer), 404, "id")


# --- GraphQL: the same bulk operations -------------------------------------------------


CREATE_MANY = """
mutation ($inputs: [ProductInput!]!, $supplierCode: String, $skip: Boolean!, $dryRun: Boolean!) {
  createProducts(inputs: $inputs, supplierCode: $supplierCode, skipDuplicates: $skip, dryRun: $dryRun) {
    total created skipped failed dryRun
    results { index status ean id errors { field code message } }
    errors { code message }
  }
}"""
UPDATE_MANY = """
mutation ($inputs: [ProductInput!]!, $skip: Boolean!, $dryRun: Boolean!) {
  updateProducts(inputs: $inputs, skipNotFound: $skip, dryRun: $dryRun) {
    total updated unchanged skipped failed dryRun
    results { index status ean changedFields errors { field code } }
    errors { code message }
  }
}"""
SUPPLIER = '{ products(first: 10, filter: {supplierCode: "KIMEX"}) { totalCount } }'


async def test_graphql_create_products_with_duplicates_supplier_and_dry_run(
    client: httpx.AsyncClient, key: Key
) -> None:
    await create(client, key, ean=ean13(1), name="Existant")
    inputs = [{"ean": ean13(1), "name": "A"}, {"ean": ean13(2), "name": "B"}]
    args = {"inputs": inputs, "supplierCode": "KIMEX"}
    dry = (await gql(client, CREATE_MANY, key, **args, skip=False, dryRun=True))["data"][
        "createProducts"
    ]
    real = (await gql(client, CREATE_MANY, key, **args, skip=False, dryRun=False))["data"][
        "createProducts"
    ]
    for payload in (dry, real):
        assert (payload["total"], payload["created"], payload["failed"]) == (2, 1, 1)
        assert [r["status"] for r in payload["results"]] == ["ERROR", "CREATED"]
        assert payload["results"][0]["errors"][0]["code"] == "CONFLICT"
    assert (dry["dryRun"], dry["results"][1]["id"]) == (True, None)
    assert real["results"][1]["id"]
    skipped = (await gql(client, CREATE_MANY, key, **args, skip=True, dryRun=False))["data"][
        "createProducts"
    ]
    assert [r["status"] for r in skipped["results"]] == ["SKIPPED", "SKIPPED"]
    assert (await gql(client, SUPPLIER, key))["data"]["products"]["totalCount"] == 1
    too_many = [{"ean": ean13(n), "name": "x"} for n in range(1001)]
    refused = await gql(client, CREATE_MANY, key, inputs=too_many, skip=False, dryRun=False)
    assert refused["data"]["createProducts"]["errors"][0]["code"] == "TOO_MANY"


async def test_graphql_update_products_by_ean(client: httpx.AsyncClient, key: Key) -> None:
    await create(client, key, ean=ean13(1), name="A", price=1)
    inputs = [{"ean": ean13(1), "price": 2}, {"ean": ean13(9), "price": 3}]
    strict = (await gql(client, UPDATE_MANY, key, inputs=inputs, skip=False, dryRun=True))["data"][
        "updateProducts"
    ]
    assert (strict["updated"], strict["failed"], strict["dryRun"]) == (1, 1, True)
    assert strict["results"][1]["status"] == "NOT_FOUND"
    assert (await listing(client, key))["items"][0]["price"] == 1
    lenient = (await gql(client, UPDATE_MANY, key, inputs=inputs, skip=True, dryRun=False))["data"][
        "updateProducts"
    ]
    assert (lenient["updated"], lenient["skipped"], lenient["failed"]) == (1, 1, 0)
    assert lenient["results"][0]["changedFields"] == ["price"]
    assert (await listing(client, key))["items"][0]["price"] == 2


async def test_graphql_batch_mutations_need_the_write_scope(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    reader = await make_key(["products:read"])
    for query in (CREATE_MANY, UPDATE_MANY):
        body = await gql(
            client, query, reader, inputs=[{"ean": ean13(1)}], skip=False, dryRun=False
        )
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
